"""Token-shift monitor statistics: per-step scalars under `token_shift/`, reduced from [B, T] tensors.

The trainer computes these on the driver from the step's per-token divergence and logs them with
verl's Tracking (W&B, TensorBoard, console). Percentiles, relative-position deciles and
base-entropy bins come from `sparse_rlvr.core.shift_stats`, the module summary.json and
report.html use too, so the dashboard and the offline report agree on the same tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from sparse_rlvr.core.shift_stats import (
    MONITOR_PERCENTILES,
    POSITION_BINS,
    entropy_bin_labels,
    entropy_bins,
    js_percentiles,
    mean_by_bin,
    position_bins,
)


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
    """Scalars for one step; all [B, T] inputs, statistics over response tokens only.

    Names: js_mean, js_max, js_p{50,90,95,99}, frac_js_below_{low}, frac_js_above_{high},
    js_mean_pos_{b}of10 (b-th relative-position decile, b = 0 .. 9, (pos + 0.5) / len),
    js_mean_base_entropy_{from}_{to} (shift_stats.ENTROPY_EDGES), top1_agreement,
    policy_top1_in_base_top3, weight_{mean,std,min,max}; an empty bin logs nothing.
    """
    valid = response_mask.bool()
    values = _flat(js, valid)
    if values.size == 0:
        return {}
    metrics = {
        "token_shift/js_mean": float(values.mean()),
        "token_shift/js_max": float(values.max()),
        f"token_shift/frac_js_below_{low:g}": float((values < low).mean()),
        f"token_shift/frac_js_above_{high:g}": float((values > high).mean()),
    }
    metrics |= {f"token_shift/js_p{p}": q for p, q in js_percentiles(values, MONITOR_PERCENTILES).items()}
    metrics |= _by_relative_position(values, valid)
    if base_entropy is not None:
        metrics |= _by_entropy(values, _flat(base_entropy, valid))
    if top1_agree is not None:
        metrics["token_shift/top1_agreement"] = float(_flat(top1_agree, valid).mean())
    if policy_top1_rank_in_base is not None:
        metrics["token_shift/policy_top1_in_base_top3"] = float((_flat(policy_top1_rank_in_base, valid) <= 3).mean())
    if weights is not None:
        w = _flat(weights, valid)
        metrics |= {"token_shift/weight_mean": float(w.mean()),
                    "token_shift/weight_std": float(w.std(ddof=1)) if w.size > 1 else 0.0,  # unbiased, as torch's std
                    "token_shift/weight_min": float(w.min()), "token_shift/weight_max": float(w.max())}
    return metrics


def response_positions(valid: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(position, length) of every response token of a [B, T] mask, flat in mask order.

    position counts the response tokens before it in its row; length is the row's token count.
    """
    position = (valid.long().cumsum(-1) - 1)[valid]
    length = valid.sum(-1, keepdim=True).expand_as(valid)[valid]
    return position.cpu().numpy(), length.cpu().numpy()


def _by_relative_position(values: np.ndarray, valid: torch.Tensor) -> dict[str, float]:
    """Mean JS per relative-position decile of each response (start .. end)."""
    means = mean_by_bin(values, position_bins(*response_positions(valid)), POSITION_BINS)
    return {f"token_shift/js_mean_pos_{b}of{POSITION_BINS}": m for b, m in enumerate(means) if m is not None}


def _by_entropy(values: np.ndarray, entropy: np.ndarray) -> dict[str, float]:
    """Mean JS per base-entropy bin."""
    means = mean_by_bin(values, entropy_bins(entropy), len(entropy_bin_labels()))
    return {f"token_shift/js_mean_base_entropy_{lo:g}_{hi:g}": m
            for (lo, hi), m in zip(entropy_bin_labels(), means) if m is not None}


def _flat(tensor: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    """The response tokens of a [B, T] tensor as a float64 numpy array."""
    return tensor.detach()[valid].double().cpu().numpy()
