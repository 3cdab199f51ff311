"""verl sees our reward manager through the plugin entry point; DAPO's overlong penalty matches."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparse_rlvr.training.verl_glue.reward_manager import overlong_penalty


def test_registered_through_entry_point() -> None:
    code = (
        "import verl\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "print('sparse_rlvr_math' in REWARD_MANAGER, REWARD_MANAGER['sparse_rlvr_math'].__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "True SparseRLVRMathRewardManager", out.stderr[-2000:]


@pytest.mark.parametrize(("length", "expected"), [(100, 0.0), (768, 0.0), (896, -0.5), (1024, -1.0)])
def test_overlong_penalty_matches_dapo(length: int, expected: float) -> None:
    # DAPO: expected_len = max_resp_len - buffer; penalty = min(-(len - expected_len) / buffer * factor, 0)
    assert overlong_penalty(length, 1024, 256, 1.0) == pytest.approx(expected)


def test_manager_run_single_with_overlong_penalty() -> None:
    """The registered manager grades a real DataProto item and adds DAPO's overlong penalty."""
    import asyncio

    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls

    from sparse_rlvr.training.verl_glue.reward_manager import register_reward_manager
    from sparse_rlvr.workflows.tiny_models import tiny_tokenizer

    register_reward_manager()
    tokenizer = tiny_tokenizer()
    ids = tokenizer("so \\boxed{\\frac{2}{4}}", add_special_tokens=False)["input_ids"]
    config = OmegaConf.create(
        {"reward": {"reward_kwargs": {"max_resp_len": len(ids) + 2, "overlong_buffer_cfg": {"enable": True, "len": 4, "penalty_factor": 1.0, "log": True}}}}
    )
    data = DataProto.from_dict(
        tensors={"responses": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)},
        non_tensors={"data_source": np.array(["math"], dtype=object), "reward_model": np.array([{"ground_truth": "0.5"}], dtype=object)},
    )
    manager = get_reward_manager_cls("sparse_rlvr_math")(config, tokenizer, None)
    out = asyncio.run(manager.run_single(data))
    info = out["reward_extra_info"]
    assert info["reason"] == "correct"
    assert info["overlong_reward"] == pytest.approx(-0.5)  # 2 tokens into a 4-token buffer
    assert out["reward_score"] == pytest.approx(0.5)
