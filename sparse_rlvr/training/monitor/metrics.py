"""Token-shift monitor statistics: per-step scalars under `token_shift/`, reduced from [B, T] tensors.

Workers compute these from their micro-batches' divergence results; only scalars (and a JS
histogram) go to the driver, which logs them with verl's Tracking (W&B, TensorBoard, console).
"""

from __future__ import annotations

import numpy as np
import torch

PERCENTILES = (50, 90, 95, 99)
POSITION_BINS = 5
ENTROPY_EDGES = (0.0, 0.5, 1.0, 2.0, float("inf"))


def token_shift_metrics(
    js: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    base_entropy: torch.Tensor | None = None,
    top1_agree: torch.Tensor | None = None,
    policy_top1_rank_in_base: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    low: float = 1e-3,
    high: float = 0.1,
) -> dict[str, float]:
    """Scalars for one step; all [B, T] inputs, statistics over response tokens only."""
    valid = response_mask.bool()
    values = js[valid].double()
    if values.numel() == 0:
        return {}
    metrics = {
        "token_shift/js_mean": values.mean().item(),
        "token_shift/js_max": values.max().item(),
        f"token_shift/frac_js_below_{low:g}": (values < low).double().mean().item(),
        f"token_shift/frac_js_above_{high:g}": (values > high).double().mean().item(),
    }
    # numpy, not torch.quantile: torch refuses more than 2**24 values, fewer than one 7B step's tokens
    quantiles = np.percentile(values.numpy(), PERCENTILES)
    metrics |= {f"token_shift/js_p{p}": float(q) for p, q in zip(PERCENTILES, quantiles)}
    metrics |= _by_relative_position(js, valid)
    if base_entropy is not None:
        metrics |= _by_entropy(js, base_entropy, valid)
    if top1_agree is not None:
        metrics["token_shift/top1_agreement"] = top1_agree[valid].double().mean().item()
    if policy_top1_rank_in_base is not None:
        metrics["token_shift/policy_top1_in_base_top3"] = (policy_top1_rank_in_base[valid] <= 3).double().mean().item()
    if weights is not None:
        w = weights[valid].double()
        metrics |= {"token_shift/weight_mean": w.mean().item(), "token_shift/weight_std": w.std().item() if w.numel() > 1 else 0.0,
                    "token_shift/weight_min": w.min().item(), "token_shift/weight_max": w.max().item()}
    return metrics


def _by_relative_position(js: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Mean JS in POSITION_BINS equal parts of each response (start .. end)."""
    lengths = valid.sum(-1, keepdim=True).clamp_min(1)
    relative = (valid.cumsum(-1) - 1).double() / lengths
    bins = (relative * POSITION_BINS).long().clamp(0, POSITION_BINS - 1)
    out = {}
    for b in range(POSITION_BINS):
        inside = valid & (bins == b)
        if inside.any():
            out[f"token_shift/js_mean_pos_{b}of{POSITION_BINS}"] = js[inside].double().mean().item()
    return out


def _by_entropy(js: torch.Tensor, entropy: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    out = {}
    for lo, hi in zip(ENTROPY_EDGES[:-1], ENTROPY_EDGES[1:]):
        inside = valid & (entropy >= lo) & (entropy < hi)
        if inside.any():
            out[f"token_shift/js_mean_base_entropy_{lo:g}_{hi:g}"] = js[inside].double().mean().item()
    return out
