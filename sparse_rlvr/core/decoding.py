"""Batched incremental decoding with a KV cache, sampling every token with `core.sampling.sample`.

Used by cross-sampling (two models in lock step) and by `shift --sequences policy|base` (one
model alone). Prompts are left-padded so one forward per new token serves the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from sparse_rlvr.core.sampling import SamplingOptions, sample


class IncrementalLM:
    """A model plus its KV cache: `prefill` the prompts once, then one `step` per new token.

    Each call returns the next-token logits [B, V] (float32, vocabulary cut to `vocab_size`); the
    prefix is never recomputed.
    """

    def __init__(self, model: Any, vocab_size: int) -> None:
        self.model = model
        self.vocab_size = vocab_size
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: [B, P] left-padded prompts; returns logits for the first new token."""
        self.cache = DynamicCache()
        self.mask = mask.to(self.device)
        self.next_position = self.mask.sum(-1, keepdim=True)
        positions = (self.mask.cumsum(-1) - 1).clamp_min(0)
        return self._forward(ids.to(self.device), positions)

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: [B] the tokens just chosen; returns logits for the next one."""
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        positions = self.next_position
        self.next_position = self.next_position + 1
        return self._forward(tokens.to(self.device)[:, None], positions)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                         past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, : self.vocab_size].float()


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, P] ids and attention mask for prompts of different lengths, padded on the left."""
    width = max(map(len, prompts))
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def decode_alone(
    model: Any, prompts: list[list[int]], options: SamplingOptions, *, vocab_size: int, eos_id: int, pad_id: int, seed: int
) -> list[list[int]]:
    """[B] responses of one model decoding alone, each up to and including its first EOS.

    `shift` samples its responses with it; for cross-sampling it is the reference end point (a
    run where the other model never acts must reproduce it exactly) and the benchmark's limit.
    """
    ids, mask = left_pad(prompts, pad_id)
    lm = IncrementalLM(model, vocab_size)
    logits = lm.prefill(ids, mask)
    generator = torch.Generator().manual_seed(seed)
    out: list[list[int]] = [[] for _ in prompts]
    alive = torch.ones(len(prompts), dtype=torch.bool)
    for step in range(options.max_new_tokens):
        tokens = sample(logits, options.temperature, options.top_p, generator)
        for b in alive.nonzero()[:, 0].tolist():
            out[b].append(int(tokens[b]))
        alive &= tokens.cpu() != eos_id
        if not alive.any() or step + 1 == options.max_new_tokens:
            break
        logits = lm.step(torch.where(alive.to(tokens.device), tokens, torch.full_like(tokens, pad_id)))
    return out
