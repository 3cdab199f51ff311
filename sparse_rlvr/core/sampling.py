"""Token sampling, written once: the top-k and nucleus (top-p) filters and the one sampler.

Every decoder of the package draws its tokens here: cross-sampling (`interventions`), the
`hf` rollout backend (`training.verl_glue.hf_rollout`), and the divergence core's optional
top-p truncation uses the same nucleus.

Notation: B rows (sequences), V vocabulary entries; `...` any leading dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SamplingOptions:
    """How a decoder samples: temperature (> 0), nucleus top-p ((0, 1]) and the longest response."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512


def top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """[..., V] bool mask of the tokens outside each row's nucleus.

    The nucleus is the smallest set of most likely tokens whose probability reaches `top_p`
    (the token that crosses it is kept, as in Hugging Face's and vLLM's samplers); at least one
    token is always kept. Entries at -inf have probability 0 and are outside.
    """
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
    mass_before = probs.cumsum(-1) - probs
    outside_sorted = mass_before >= top_p
    outside_sorted[..., 0] = False
    return torch.zeros_like(outside_sorted).scatter_(-1, order, outside_sorted)


def top_k_mask(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """[..., V] bool mask of the tokens below each row's k-th largest logit (ties with it are kept)."""
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits < kth


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits [..., V] with -inf outside the top-k set, then outside the nucleus of what is left.

    top_k <= 0 or >= V keeps all; top_p >= 1 keeps all. The order (top-k, then top-p over the
    renormalised top-k distribution) is Hugging Face's and vLLM's.
    """
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        logits = logits.masked_fill(top_k_mask(logits, top_k), float("-inf"))
    if top_p is not None and top_p < 1.0:
        logits = logits.masked_fill(top_p_mask(logits, top_p), float("-inf"))
    return logits


def sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator, top_k: int = 0,
) -> torch.Tensor:
    """[B] token ids drawn from softmax(logits / temperature), filtered by `filter_logits`.

    Args:
        logits: [B, V] next-token logits (any device, any float dtype).
        temperature: > 0 samples; 0 is greedy (argmax, no random number drawn).
        top_p, top_k: the nucleus and top-k filters (1.0 and 0: off).
        generator: a CPU `torch.Generator`; each call draws exactly one float64 uniform per row
            from it, whatever the logits, so decoders that differ only in whose logits they
            sample at some steps stay in lock step (common random numbers).

    The draw is the inverse CDF: the token whose cumulative probability (float64, vocabulary
    order) first exceeds u * total, u ~ U[0, 1).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 turns the nucleus filter off), got {top_p}")
    if temperature == 0:
        return logits.argmax(-1)
    filtered = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
    cumulative = torch.softmax(filtered, dim=-1).double().cumsum(-1)
    uniforms = torch.rand(len(logits), 1, generator=generator, dtype=torch.float64)
    draws = uniforms.to(cumulative.device) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, draws).clamp_max(logits.shape[-1] - 1)[:, 0]
