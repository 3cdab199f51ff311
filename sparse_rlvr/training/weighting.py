"""Divergence weighting and token selection: pure tensor functions (paper section 4; "80/20" masks).

Notation: D [B, T] per-token divergence, A [B, T] advantages, mask [B, T] response mask.
    w = 1 + s * (sigmoid(alpha * D) - 1/2),  detached, in [1 - s/2, 1 + s/2]
alpha > 0 boosts high-divergence tokens, alpha < 0 boosts low-divergence tokens; s = 0 is plain GRPO.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

SOURCES = ("js", "kl_ref", "kl_ref_reverse")
MASKS = ("none", "divergence", "entropy")


@dataclass(frozen=True)
class WeightingConfig:
    """Options of divergence weighting: all of them for `algorithm.adv_estimator=divergence_weighted`;
    only scale and alpha for the loss-time variant (`policy_loss.loss_mode=divergence_weighted`, whose D
    is KL(pi_old || pi_theta)), which refuses the others (`config.check_run_config`)."""

    scale: float = field(default=0.0, metadata={"help": "s: weights lie in [1 - s/2, 1 + s/2]; 0 disables weighting. Must be in [0, 2] so w >= 0."})
    alpha: float = field(default=1.0, metadata={"help": "Sigmoid slope: > 0 boosts high-divergence tokens (\"high-KL boost\"), < 0 low-divergence ones."})
    source: str = field(default="js", metadata={"help": "D: js = JS(base, policy) from the exact pass; kl_ref = KL(policy || base); kl_ref_reverse = KL(base || policy). Advantage-time only."})
    estimator: str = field(default="grpo", metadata={"help": "The registered outcome estimator whose advantages are weighted (grpo, rloo, ...). Advantage-time only."})
    mask: str = field(default="none", metadata={"help": "Train only on the top-rho tokens of the batch by divergence, or by entropy (\"80/20\" forking tokens). Advantage-time only."})
    rho: float = field(default=0.2, metadata={"help": "Fraction of response tokens kept by a mask."})

    def __post_init__(self) -> None:
        if not 0 <= self.scale <= 2:
            raise ValueError(f"sparse_rlvr.weighting.scale must be in [0, 2] (weights in [1 - s/2, 1 + s/2] stay >= 0), got {self.scale}")
        if self.source not in SOURCES:
            raise ValueError(f"sparse_rlvr.weighting.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.mask not in MASKS:
            raise ValueError(f"sparse_rlvr.weighting.mask must be one of {', '.join(MASKS)}, got {self.mask!r}")
        if not 0 < self.rho <= 1:
            raise ValueError(f"sparse_rlvr.weighting.rho must be in (0, 1], got {self.rho}")

    @classmethod
    def from_mapping(cls, values: object | None) -> WeightingConfig:
        """From a dict/DictConfig section (unknown keys are an error naming the valid ones)."""
        if values is None:
            return cls()
        data = dict(values.items()) if hasattr(values, "items") else dict(values)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sparse_rlvr.weighting option(s) {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


def divergence_weights(divergence: torch.Tensor, scale: float, alpha: float) -> torch.Tensor:
    """w = 1 + s * (sigmoid(alpha * D) - 1/2), detached (the weight is a constant in the gradient)."""
    return (1.0 + scale * (torch.sigmoid(alpha * divergence.detach().float()) - 0.5)).to(divergence.dtype)


def top_fraction_mask(values: torch.Tensor, response_mask: torch.Tensor, rho: float) -> torch.Tensor:
    """[B, T] bool: the response tokens whose value is among the top `rho` fraction of the batch's.

    Ties at the cut-off are all kept; padding never is.
    """
    valid = response_mask.bool()
    count = int(valid.sum())
    if count == 0:
        return valid
    keep = max(1, int(round(rho * count)))
    cutoff = values[valid].float().topk(keep).values[-1]
    return valid & (values.float() >= cutoff)


def advantage_factor(
    config: WeightingConfig,
    response_mask: torch.Tensor,
    divergence: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """[B, T] factor f with A~ = f * A: the weights w(D) times the top-rho token mask; None when f = 1.

    This is what the estimator multiplies the advantages by, and what the monitor logs as the
    applied weights. `divergence` D is needed when scale != 0 or mask = divergence, `entropy` when
    mask = entropy; both [B, T] like `response_mask`.
    """
    for name, tensor in (("divergence", divergence), ("entropy", entropy)):
        if tensor is not None and tensor.shape != response_mask.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, the response mask {tuple(response_mask.shape)}: rows must align")
    if (config.scale != 0 or config.mask == "divergence") and divergence is None:
        raise ValueError(
            "divergence_weighted needs per-token divergences from the reference pass; launch with "
            "`python -m sparse_rlvr.train` (which computes them), or set sparse_rlvr.weighting.scale=0 and sparse_rlvr.weighting.mask=none"
        )
    if config.mask == "entropy" and entropy is None:
        raise ValueError("sparse_rlvr.weighting.mask=entropy needs the policy entropy per token (old_log_prob pass)")
    factor = None
    if config.scale != 0:
        factor = divergence_weights(divergence, config.scale, config.alpha)
    if config.mask != "none":
        kept = top_fraction_mask(divergence if config.mask == "divergence" else entropy, response_mask, config.rho)
        factor = kept.to(torch.float32) if factor is None else factor * kept
    return factor


def k3_kl(old_log_prob: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi_old || pi_theta), k3 estimate on tokens sampled from pi_old: r - 1 - log r, r = pi_theta / pi_old."""
    log_ratio = (log_prob - old_log_prob).clamp(-20.0, 20.0)
    return torch.expm1(log_ratio) - log_ratio
