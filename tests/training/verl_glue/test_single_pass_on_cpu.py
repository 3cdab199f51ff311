"""The single pass's per-token comparison: temperature handling against the divergence core."""

from __future__ import annotations

import math

import pytest
import torch

from sparse_rlvr.core.divergence import token_divergence
from sparse_rlvr.training.verl_glue.single_pass import SHIFT_FIELDS, _compare


def _logits(seed: int, n: int = 12, v: int = 50) -> torch.Tensor:
    return torch.randn(n, v, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3


def test_uniform_temperature_equals_scaled_logits():
    base, policy = _logits(0), _logits(1)
    got = _compare(base, policy, torch.full((12,), 0.7), None)
    expected = token_divergence(base / 0.7, policy / 0.7, top_k=0)
    for key, field in SHIFT_FIELDS.items():
        torch.testing.assert_close(got[key], getattr(expected, field).float())


def test_per_token_temperatures_scale_each_row():
    base, policy = _logits(2), _logits(3)
    temperature = torch.linspace(0.5, 1.5, 12)
    got = _compare(base, policy, temperature, 5)
    expected = token_divergence(base / temperature[:, None].double(), policy / temperature[:, None].double(), top_k=0)
    torch.testing.assert_close(got["token_shift_js"], expected.js.float())


def test_fields_are_float_per_token_and_identical_models_give_zero():
    base = _logits(4)
    got = _compare(base, base.clone(), 1.0, None)
    assert set(got) == set(SHIFT_FIELDS) and all(v.dtype == torch.float32 and v.shape == (12,) for v in got.values())
    assert torch.all(got["token_shift_js"] == 0) and torch.all(got["token_shift_top1_agree"] == 1)
    assert torch.all(got["token_shift_policy_top1_rank"] == 1)


def test_nan_rows_give_nan_instead_of_raising():
    """A raise on one rank would leave its data-parallel peers waiting in their next collective."""
    base, policy = _logits(5), _logits(6)
    policy[3, 7] = float("nan")
    base[8, :] = float("-inf")
    got = _compare(base, policy, 1.0, None)
    bad = torch.zeros(12, dtype=torch.bool)
    bad[[3, 8]] = True
    assert torch.isnan(got["token_shift_js"][bad]).all()
    expected = token_divergence(base[~bad], policy[~bad], top_k=0)
    torch.testing.assert_close(got["token_shift_js"][~bad], expected.js.float())


def test_uniform_temperature_is_read_from_scalars_and_per_sample_tensors():
    from sparse_rlvr.training.verl_glue.single_pass import _uniform_temperature

    assert _uniform_temperature(0.7) == pytest.approx(0.7)
    assert _uniform_temperature(torch.tensor([1.0, 1.0])) == 1.0
    assert _uniform_temperature(torch.tensor([1.0, 0.5])) is None


def test_padded_vocabulary_rows_never_enter_the_shift():
    """Logits still holding padded rows (here: wildly different in the two models) give the real rows' shift."""
    from verl.utils import tensordict_utils as tu

    from sparse_rlvr.training.verl_glue.single_pass import _shift_per_token

    lengths, real, padded = [5, 3], 40, 6
    ids = torch.nested.nested_tensor([torch.arange(n) for n in lengths], layout=torch.jagged)
    micro_batch = tu.get_tensordict({"input_ids": ids, "temperature": torch.tensor([0.7, 0.7])},
                                    non_tensor_dict={"use_remove_padding": False})
    base, policy = (_logits(seed, n=2 * 5, v=real).view(2, 5, real) for seed in (7, 8))
    base_padded = torch.cat([base, torch.full((2, 5, padded), 50.0, dtype=base.dtype)], dim=-1)
    policy_padded = torch.cat([policy, torch.full((2, 5, padded), -50.0, dtype=policy.dtype)], dim=-1)
    got = _shift_per_token(None, base_padded, policy_padded, {"temperature": torch.tensor([0.7, 0.7])}, micro_batch,
                           None, vocab_size=real)
    rows = lambda x: torch.cat([x[b, :n] for b, n in enumerate(lengths)]) / 0.7  # noqa: E731
    expected = token_divergence(rows(base), rows(policy), top_k=0)
    for key, field in SHIFT_FIELDS.items():
        torch.testing.assert_close(got[key].values(), getattr(expected, field).float(), msg=key)
    uncut = _shift_per_token(None, base_padded, policy_padded, {"temperature": torch.tensor([0.7, 0.7])}, micro_batch,
                             None, vocab_size=None)
    # teeth: kept, the padded rows would dominate both models (disjoint mass: JS = log 2 at every token)
    torch.testing.assert_close(uncut["token_shift_js"].values(), torch.full((8,), math.log(2)))
    assert (uncut["token_shift_js"].values() - got["token_shift_js"].values()).abs().max() > 0.1
