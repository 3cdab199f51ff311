"""Token-shift monitor scalars against numpy computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_rlvr.training.monitor.metrics import token_shift_metrics


def test_scalars_match_numpy_over_response_tokens_only():
    g = torch.Generator().manual_seed(0)
    js = torch.rand(4, 10, generator=g) ** 4 * 0.69
    mask = (torch.arange(10) < torch.tensor([[10], [6], [3], [8]])).float()
    js_padded = js.clone()
    js_padded[mask == 0] = 100.0  # padding must never count
    entropy = torch.rand(4, 10, generator=g) * 3
    weights = 1 + 0.5 * (torch.sigmoid(3 * js) - 0.5)
    m = token_shift_metrics(js_padded, mask, base_entropy=entropy, top1_agree=js < 0.05,
                            policy_top1_rank_in_base=torch.randint(1, 6, (4, 10), generator=g), weights=weights)
    values = js[mask.bool()].double().numpy()
    assert np.isclose(m["token_shift/js_mean"], values.mean()) and np.isclose(m["token_shift/js_max"], values.max())
    for p in (50, 90, 95, 99):
        assert np.isclose(m[f"token_shift/js_p{p}"], np.percentile(values, p))
    assert np.isclose(m["token_shift/frac_js_above_0.1"], (values > 0.1).mean())
    assert np.isclose(m["token_shift/frac_js_below_0.001"], (values < 1e-3).mean())
    assert np.isclose(m["token_shift/top1_agreement"], (values < 0.05).mean())
    assert m["token_shift/weight_min"] >= 1.0 and m["token_shift/weight_max"] <= 1.25
    first_bin = [js[r, : int(np.ceil(n / 5))].tolist() for r, n in enumerate(mask.sum(-1).tolist())]  # i / n < 1/5
    assert np.isclose(m["token_shift/js_mean_pos_0of5"], np.mean([v for row in first_bin for v in row]))
    assert sum(1 for k in m if k.startswith("token_shift/js_mean_base_entropy")) >= 3


def test_empty_batch_gives_no_metrics():
    assert token_shift_metrics(torch.zeros(2, 3), torch.zeros(2, 3)) == {}


def test_percentiles_of_a_step_larger_than_torch_quantile_accepts():
    """A 7B DAPO step has more than 2**24 response tokens; torch.quantile refuses that many."""
    js = torch.rand(1, 2**24 + 8, generator=torch.Generator().manual_seed(0)) * 0.6
    metrics = token_shift_metrics(js, torch.ones_like(js, dtype=torch.bool))
    expected = np.percentile(js.double().numpy().ravel(), [50, 99])
    assert metrics["token_shift/js_p50"] == pytest.approx(expected[0], abs=1e-12)
    assert metrics["token_shift/js_p99"] == pytest.approx(expected[1], abs=1e-12)
