"""Lock-step cross-sampling: two models decode together, each with its own KV cache.

At every step both models' full next-token distributions are at hand; the exact JS between them
(divergence core) feeds the switching rule, the acting model's distribution is sampled, and the
token is fed to both caches. One forward of each model per generated token, batched over
sequences, no prefix recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sparse_rlvr.core.divergence import token_divergence
from sparse_rlvr.core.decoding import IncrementalLM, left_pad
from sparse_rlvr.core.sampling import SamplingOptions, sample
from sparse_rlvr.interventions.rules import SwitchRule


@dataclass
class Decoded:
    """One response: its tokens, where the intervening model acted, and the JS at every step."""

    tokens: list[int]
    swapped_positions: list[int] = field(default_factory=list)
    js: list[float] = field(default_factory=list)

    @property
    def swapped_tokens(self) -> list[int]:
        return [self.tokens[i] for i in self.swapped_positions]


def cross_sample(
    primary: Any,
    intervening: Any,
    prompts: list[list[int]],
    rule: SwitchRule,
    options: SamplingOptions,
    *,
    vocab_size: int,
    eos_id: int,
    pad_id: int,
    seed: int,
) -> list[Decoded]:
    """Decode one response per prompt with `rule` deciding, token by token, who samples it."""
    ids, mask = left_pad(prompts, pad_id)
    first, second = IncrementalLM(primary, vocab_size), IncrementalLM(intervening, vocab_size)
    primary_logits, intervening_logits = first.prefill(ids, mask), second.prefill(ids, mask)
    generator = torch.Generator().manual_seed(seed)
    rule.start(len(prompts))
    out = [Decoded([]) for _ in prompts]
    alive = torch.ones(len(prompts), dtype=torch.bool)
    for step in range(options.max_new_tokens):
        divergence = token_divergence(primary_logits, intervening_logits, top_k=1)
        swap = rule(step, divergence, divergence.base_entropy) & alive
        acting = torch.where(swap.to(primary_logits.device)[:, None], intervening_logits, primary_logits)
        tokens = sample(acting, options.temperature, options.top_p, generator)
        for b in alive.nonzero()[:, 0].tolist():
            out[b].tokens.append(int(tokens[b]))
            out[b].js.append(float(divergence.js[b]))
            if swap[b]:
                out[b].swapped_positions.append(step)
        alive &= tokens.cpu() != eos_id
        if not alive.any() or step + 1 == options.max_new_tokens:
            break
        tokens = torch.where(alive.to(tokens.device), tokens, torch.full_like(tokens, pad_id))
        primary_logits, intervening_logits = first.step(tokens), second.step(tokens)
    return out
