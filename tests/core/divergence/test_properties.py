"""Properties of token_divergence over random logits (hypothesis): symmetry, bounds, invariances."""

from __future__ import annotations

import math

import pytest
import torch

from sparse_rlvr.core.divergence import token_divergence

pytest.importorskip("hypothesis", reason="property tests need hypothesis (a torch-only GPU machine may lack it)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

logit_rows = st.integers(min_value=0, max_value=2**31 - 1).map(
    lambda seed: torch.randn(4, 37, generator=torch.Generator().manual_seed(seed)) * (1 + seed % 7)
)


@settings(max_examples=60, deadline=None)
@given(a=logit_rows, b=logit_rows)
def test_js_is_symmetric_and_bounded(a, b):
    forward, backward = token_divergence(a, b, top_k=3), token_divergence(b, a, top_k=3)
    torch.testing.assert_close(forward.js, backward.js, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(forward.kl_base_policy, backward.kl_policy_base)
    assert ((forward.js >= 0) & (forward.js <= math.log(2))).all()
    # JS <= min of the two KLs' halves bound: JS <= KL(p||q)/4 + KL(q||p)/4 (convexity)
    assert (forward.js <= (forward.kl_base_policy + forward.kl_policy_base) / 4 + 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(a=logit_rows, shift=st.floats(-1e3, 1e3))
def test_zero_for_identical_and_invariant_to_constant_shift(a, shift):
    assert torch.equal(token_divergence(a, a.clone()).js, torch.zeros(4))
    shifted = token_divergence(a, a + shift)
    assert (shifted.js < 1e-9).all() and (shifted.policy_top1_rank_in_base == 1).all()


@settings(max_examples=40, deadline=None)
@given(a=logit_rows, b=logit_rows, shift=st.floats(-100, 100))
def test_shifting_one_row_changes_nothing(a, b, shift):
    plain, moved = token_divergence(a, b), token_divergence(a + shift, b)
    torch.testing.assert_close(moved.js, plain.js, atol=5e-6, rtol=1e-4)
    torch.testing.assert_close(moved.base_entropy, plain.base_entropy, atol=5e-5, rtol=1e-4)
