"""The one sampler and its filters against float64 loop references, and its lock-step contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_rlvr.core.sampling import filter_logits, sample, top_p_mask


def reference_sample(logits: torch.Tensor, temperature: float, top_p: float, top_k: int, u: np.ndarray) -> list[int]:
    """Row by row in float64: top-k, then the nucleus of the renormalised rest, then inverse CDF at u."""
    tokens = []
    for row, draw in zip(logits.double().numpy(), u):
        z = row / temperature
        keep = np.ones_like(z, dtype=bool)
        if 0 < top_k < len(z):
            keep &= z >= np.sort(z)[::-1][top_k - 1]
        p = np.where(keep, np.exp(z - z[keep].max()), 0.0)
        p /= p.sum()
        if top_p < 1:
            nucleus, mass = np.zeros_like(keep), 0.0
            for index in np.argsort(-p, kind="stable"):
                if mass >= top_p:
                    break
                nucleus[index], mass = True, mass + p[index]
            p = np.where(nucleus, p, 0.0)
        cumulative = np.cumsum(p)
        tokens.append(int(np.searchsorted(cumulative, draw * cumulative[-1])))
    return tokens


def test_filters_on_a_hand_worked_distribution():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, 0, 0.7)).tolist() == [False, False, True, True]  # 0.5 < 0.7: 0.3 crosses
    assert torch.isinf(filter_logits(logits, 0, 0.5)).tolist() == [False, True, True, True]  # 0.5 reaches 0.5
    assert torch.isinf(filter_logits(logits, -1, 1.0)).sum() == 0
    assert top_p_mask(logits[None].repeat(3, 1), 1e-9).sum(-1).tolist() == [3, 3, 3]  # the top token always stays
    # top-p applies to the renormalised top-k set: top-2 leaves 0.625 / 0.375, whose 0.6-nucleus is one token
    assert torch.isinf(filter_logits(logits, 2, 0.6)).tolist() == [False, True, True, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("temperature", "top_p", "top_k"), [(1.0, 1.0, 0), (0.7, 0.9, 0), (1.3, 0.8, 5), (1.0, 1.0, 3)])
def test_sample_equals_a_float64_inverse_cdf_reference(seed, temperature, top_p, top_k):
    logits = torch.randn(16, 50, generator=torch.Generator().manual_seed(100 + seed)) * 2
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    tokens = sample(logits, temperature, top_p, generator, top_k=top_k)
    assert tokens.tolist() == reference_sample(logits, temperature, top_p, top_k, u)


def test_frequencies_follow_the_filtered_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20_000, 1)
    tokens = sample(logits, 1.0, 0.9, torch.Generator().manual_seed(0))
    frequencies = torch.bincount(tokens, minlength=4).double() / len(tokens)
    torch.testing.assert_close(frequencies, torch.tensor([0.5, 0.3, 0.15, 0.0], dtype=torch.float64) / 0.95, atol=0.01, rtol=0)


def test_one_uniform_per_row_whatever_the_logits():
    """Decoders that sample different models' logits at some steps stay in lock step."""
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    sample(torch.randn(4, 50), 1.0, 0.5, a)
    sample(torch.randn(4, 50) * 10, 0.3, 1.0, b, top_k=2)
    assert torch.equal(a.get_state(), b.get_state())


def test_temperature_zero_is_greedy_and_draws_nothing():
    logits = torch.randn(6, 40)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert torch.equal(sample(logits, 0.0, 0.5, generator, top_k=3), logits.argmax(-1))
    assert torch.equal(generator.get_state(), state)


@pytest.mark.parametrize(("temperature", "top_p", "match"), [(-1.0, 1.0, "temperature must be >= 0"),
                                                             (1.0, 0.0, r"top_p must be in \(0, 1\]"),
                                                             (1.0, 1.5, r"top_p must be in \(0, 1\]")])
def test_bad_settings_are_named(temperature, top_p, match):
    with pytest.raises(ValueError, match=match):
        sample(torch.randn(2, 5), temperature, top_p, torch.Generator())
