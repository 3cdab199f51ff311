"""Per-token dump of each training step for the "RL Logging Board" viewer, one JSONL file per step.

Schema (one JSON object per response): the viewer's keys, as its README documents and its loader
reads them (OpenRLHF/OpenRLHF openrlhf/utils/rl_logging_board/rl_logging_board.py, `load_log_file`)
and as ROLL writes them (alibaba/ROLL roll/pipeline/rlvr/rlvr_pipeline.py, `save_metrics` under
`save_logging_board_dir`):
    prompt, response: str; reward: float; step: int; response_tokens: list[str];
    logprobs, ref_logprobs, token_rewards: list[float], one per response token
plus ours, which the viewer ignores: uid, token_ids, prompt_ids, entropy, js, weights, advantages.
The viewer has no critic here, so `values` is left out (it then skips that row of its token view).
It loads every `*.jsonl` in one folder and groups lines by `step`, so point `directory` at
`<logging board root>/<run name>`. Non-finite numbers are written as null (strict JSON).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sparse_rlvr.core.run_files import atomic_write
from sparse_rlvr.training.monitor.samples import ShiftSample

VIEWER_KEYS = ("prompt", "response", "reward", "step", "response_tokens", "logprobs", "ref_logprobs", "token_rewards")
EXTRA_KEYS = ("uid", "token_ids", "prompt_ids", "entropy", "js", "weights", "advantages")


def logging_board_record(sample: ShiftSample, step: int) -> dict[str, Any]:
    """One viewer line; token_rewards default to verl's outcome reward: the score on the last token."""
    token_rewards = sample.token_rewards
    if token_rewards is None:
        token_rewards = [0.0] * len(sample.tokens)
        if token_rewards:
            token_rewards[-1] = sample.reward
    return {
        "prompt": sample.prompt, "response": sample.response, "reward": _number(sample.reward), "step": int(step),
        "response_tokens": list(sample.tokens), "logprobs": _numbers(sample.logprobs),
        "ref_logprobs": _numbers(sample.ref_logprobs), "token_rewards": _numbers(token_rewards),
        "uid": sample.uid, "token_ids": [int(t) for t in sample.token_ids],
        "prompt_ids": None if sample.prompt_ids is None else [int(t) for t in sample.prompt_ids],
        "entropy": _numbers(sample.entropy),
        "js": _numbers(sample.js), "weights": _numbers(sample.weights), "advantages": _numbers(sample.advantages),
    }


def sample_from_record(record: dict[str, Any]) -> ShiftSample:
    """A ShiftSample back from one dumped line (nulls, i.e. non-finite numbers, come back as NaN)."""
    floats = lambda values: None if values is None else [math.nan if v is None else float(v) for v in values]  # noqa: E731
    return ShiftSample(
        uid=record["uid"], prompt=record["prompt"], response=record["response"], tokens=record["response_tokens"],
        token_ids=record["token_ids"], logprobs=floats(record["logprobs"]), ref_logprobs=floats(record["ref_logprobs"]),
        entropy=floats(record["entropy"]), js=floats(record["js"]),
        reward=math.nan if record["reward"] is None else float(record["reward"]),
        advantages=floats(record.get("advantages")), weights=floats(record.get("weights")),
        token_rewards=floats(record.get("token_rewards")), prompt_ids=record.get("prompt_ids"),
    )


def _number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _numbers(values: Iterable[float] | None) -> list[float | None] | None:
    return None if values is None else [_number(v) for v in values]


def write_logging_board_step(directory: str | os.PathLike, step: int, samples: Iterable[ShiftSample]) -> Path:
    """Write `<directory>/step_<step>.jsonl` atomically (`run_files.atomic_write`); returns its path.

    A crash or an error mid-write leaves no partial step file (an earlier file of that step, say
    from before a resume, stays as it was); the temporary name does not end in ".jsonl", so the
    viewer never reads it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"step_{int(step)}.jsonl"
    text = "".join(json.dumps(logging_board_record(sample, step), ensure_ascii=False, allow_nan=False) + "\n" for sample in samples)
    # backslashreplace: a lone surrogate in a token becomes the JSON escape \udXXX, not an error.
    atomic_write(target, text.encode("utf-8", errors="backslashreplace"))
    return target


def read_logging_board(directory: str | os.PathLike) -> dict[int, list[dict[str, Any]]]:
    """Every record of every `*.jsonl` in `directory`, grouped by step as the viewer does."""
    steps: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(Path(directory).glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                steps.setdefault(int(record["step"]), []).append(record)
    return steps
