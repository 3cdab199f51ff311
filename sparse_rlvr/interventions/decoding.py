"""Incremental decoding of one causal LM with its own KV cache, batched over left-padded prompts."""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from sparse_rlvr.core.sampling import sample  # noqa: F401  (benchmarks/cross_sample.py imports it from here)


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
