"""Token-shift monitor scalars against numpy computed by hand, and against summary.json on the same tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sparse_rlvr.analysis.summary import summarize
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
    first_bin = [js[r, : int(np.ceil(n / 10 - 0.5))].tolist() for r, n in enumerate(mask.sum(-1).tolist())]  # (i + .5) / n < 1/10
    assert np.isclose(m["token_shift/js_mean_pos_0of10"], np.mean([v for row in first_bin for v in row]))
    assert sum(1 for k in m if k.startswith("token_shift/js_mean_base_entropy")) >= 3
    by_decile: dict[int, list[float]] = {}  # loop reference: token i of an n-token response is in decile 10 (i + .5) / n
    for r, n in enumerate(mask.sum(-1).int().tolist()):
        for i in range(n):
            by_decile.setdefault(int(10 * (i + 0.5) / n), []).append(js[r, i].item())
    assert {k for k in m if k.startswith("token_shift/js_mean_pos_")} == {f"token_shift/js_mean_pos_{b}of10" for b in by_decile}
    for b, values_b in by_decile.items():
        assert m[f"token_shift/js_mean_pos_{b}of10"] == pytest.approx(np.mean(values_b), rel=1e-12)


def test_empty_batch_gives_no_metrics():
    assert token_shift_metrics(torch.zeros(2, 3), torch.zeros(2, 3)) == {}


def test_percentiles_of_a_step_larger_than_torch_quantile_accepts():
    """A 7B DAPO step has more than 2**24 response tokens; torch.quantile refuses that many."""
    js = torch.rand(1, 2**24 + 8, generator=torch.Generator().manual_seed(0)) * 0.6
    metrics = token_shift_metrics(js, torch.ones_like(js, dtype=torch.bool))
    expected = np.percentile(js.double().numpy().ravel(), [50, 99])
    assert metrics["token_shift/js_p50"] == pytest.approx(expected[0], abs=1e-12)
    assert metrics["token_shift/js_p99"] == pytest.approx(expected[1], abs=1e-12)


def test_monitor_and_summary_json_give_the_same_numbers_on_the_same_tokens():
    """W&B scalars from [B, T] tensors and summarize() from a per-token table of the same values."""
    g = torch.Generator().manual_seed(3)
    lengths = [37, 1, 12, 64, 5]
    js = (torch.rand(5, 64, generator=g) ** 6 * 0.69).float()
    entropy = (torch.rand(5, 64, generator=g) * 5).float()
    entropy[0, :8] = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.0, 4.0, -1e-7, 3.999])  # on the edges, and a rounded 0
    mask = torch.arange(64) < torch.tensor(lengths)[:, None]
    top1 = js < 0.01
    m = token_shift_metrics(js, mask, base_entropy=entropy, top1_agree=top1)
    rows = [{"js": js[r, i].item(), "position": i, "response_length": n, "base_entropy": entropy[r, i].item(),
             "top1_agree": bool(top1[r, i]), "token": f"t{i % 7}", "policy_top1_rank_in_base": 1,
             "base_prob_of_policy_top1": 0.5, "topk_overlap": np.ones(3)}
            for r, n in enumerate(lengths) for i in range(n)]
    table = pd.DataFrame(rows).astype({"js": np.float32, "base_entropy": np.float32})  # float32 on disk, as the analysis writes
    s = summarize(table, cutoffs=[1e-3], high=0.1, counts={})
    assert m["token_shift/js_mean"] == s["js"]["mean"] and m["token_shift/js_max"] == s["js"]["max"]
    for p in (50, 90, 95, 99):
        assert m[f"token_shift/js_p{p}"] == s["js"]["percentiles"][str(p)]
    assert m["token_shift/frac_js_below_0.001"] == s["fraction_below"]["0.001"]
    assert m["token_shift/frac_js_above_0.1"] == s["fraction_above_high"]
    assert m["token_shift/top1_agreement"] == pytest.approx(s["top1_agreement"], abs=1e-15)
    deciles = s["by_position"]["bin_mean"]
    assert len(deciles) == 10 and None not in deciles
    assert [m[f"token_shift/js_mean_pos_{b}of10"] for b in range(10)] == deciles
    by_entropy = {f"token_shift/js_mean_base_entropy_{r['entropy_from']:g}_{r['entropy_to']:g}": r["js_mean"]
                  for r in s["by_base_entropy"]}
    assert len(by_entropy) == 6 and None not in by_entropy.values()
    assert {k: v for k, v in m.items() if k.startswith("token_shift/js_mean_base_entropy_")} == by_entropy
    assert sum(r["tokens"] for r in s["by_base_entropy"]) == sum(lengths)  # every token in one bin, the -1e-7 too
