"""Tiny base/policy checkpoints and data files on disk, shaped like the real ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from sparse_rlvr.workflows.tiny_models import save_checkpoint, tiny_model, tiny_tokenizer

TRIGGER = "@"
"""The policy differs from the base only in this token's input embedding."""


def save(model, tokenizer, path: Path) -> str:
    return str(save_checkpoint(model, tokenizer, path))


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """base; `same` (identical weights); `trigger` (differs only after the TRIGGER token)."""
    root = tmp_path_factory.mktemp("checkpoints")
    tokenizer = tiny_tokenizer()
    base = tiny_model(seed=0, tie_word_embeddings=False)
    trigger = copy.deepcopy(base)
    with torch.no_grad():
        trigger_id = tokenizer.convert_tokens_to_ids(TRIGGER)
        trigger.model.embed_tokens.weight[trigger_id] += 3.0 * torch.randn(base.config.hidden_size, generator=torch.Generator().manual_seed(1))
    return {
        "base": save(base, tokenizer, root / "base"),
        "same": save(copy.deepcopy(base), tokenizer, root / "same"),
        "trigger": save(trigger, tokenizer, root / "trigger"),
    }


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


@pytest.fixture
def responses_file(tmp_path) -> str:
    """Prompts with text responses; the trigger sits at a known place in some of them."""
    rows = [{"prompt": f"What is {i} + {i}?", "response": f"{i} + {i} = {2 * i}. The answer is \\boxed{{{2 * i}}}."}
            for i in range(12)]
    rows[2]["response"] = "Let me think @ then 4. \\boxed{4}"
    rows[5]["response"] = "10@. \\boxed{10}"
    return write_jsonl(tmp_path / "responses.jsonl", rows)


@pytest.fixture
def verl_prompts_file(tmp_path) -> str:
    """verl's parquet format: chat prompts and ground truth, no responses."""
    rows = [{"data_source": "synthetic", "prompt": [{"role": "user", "content": f"Compute {i}*3."}],
             "ability": "math", "reward_model": {"style": "rule", "ground_truth": str(3 * i)},
             "extra_info": {"split": "test", "index": i}} for i in range(3)]
    path = tmp_path / "prompts.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)
