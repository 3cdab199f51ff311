"""Input validation for the divergence core: clear errors that name the first bad row."""

from __future__ import annotations

import torch


def check_pair(base_logits: torch.Tensor, policy_logits: torch.Tensor, vocab_size: int | None) -> int:
    """Validate shapes, dtypes and devices of a logits pair; return the vocabulary size to use."""
    for name, x in (("base_logits", base_logits), ("policy_logits", policy_logits)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(
                f"{name} must have shape [N, V] (tokens x vocabulary), got {tuple(x.shape)}; "
                "flatten batch and time first, e.g. logits[mask] or logits.view(-1, V)"
            )
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if base_logits.shape != policy_logits.shape:
        raise ValueError(
            f"base_logits {tuple(base_logits.shape)} and policy_logits {tuple(policy_logits.shape)} "
            "differ in shape; both models must score the same token positions over the same vocabulary"
        )
    if base_logits.device != policy_logits.device:
        raise ValueError(
            f"base_logits is on {base_logits.device} but policy_logits is on {policy_logits.device}; "
            "move both to one device"
        )
    width = base_logits.shape[1]
    if vocab_size is None:
        return width
    if not 1 <= vocab_size <= width:
        raise ValueError(
            f"vocab_size={vocab_size} must be in [1, {width}] (the logits' last dimension); "
            "pass the tokenizer's vocabulary size, e.g. len(tokenizer)"
        )
    return vocab_size


def raise_for_bad_rows(name: str, x: torch.Tensor, row_offset: int) -> None:
    """Raise naming the first row of `x` with NaN, +inf, or no finite logit; -inf alone is fine."""
    problems = {
        "contains NaN": torch.isnan(x).any(-1),
        "contains +inf": torch.isposinf(x).any(-1),
        "has no finite logit (every token masked with -inf)": torch.isneginf(x).all(-1),
    }
    first = None
    for what, rows in problems.items():
        hits = rows.nonzero()
        if hits.numel() and (first is None or hits[0, 0] < first[0]):
            first = (int(hits[0, 0]), what)
    if first is not None:
        row, what = first
        raise ValueError(
            f"{name} row {row_offset + row} {what}; logits must be finite, or -inf for masked "
            "tokens (check the model's dtype overflow or the mask that produced them)"
        )
