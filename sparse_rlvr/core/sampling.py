"""Top-p (nucleus) truncation, the paper's memory-saving setting, offered for comparison."""

from __future__ import annotations

import torch


def top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """[C, V] bool mask of the tokens outside each row's nucleus.

    The nucleus is the smallest set of most likely tokens whose probability reaches `top_p`
    (the token that crosses it is kept, as in Hugging Face's and vLLM's samplers); at least one
    token is always kept.
    """
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
    mass_before = probs.cumsum(-1) - probs
    outside_sorted = mass_before >= top_p
    outside_sorted[:, 0] = False
    return torch.zeros_like(outside_sorted).scatter_(1, order, outside_sorted)
