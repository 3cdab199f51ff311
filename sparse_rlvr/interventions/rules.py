"""Switching rules: at each decoding step, which sequences let the intervening model act.

A rule sees the step's exact divergence between the primary and the intervening model and
returns a [B] bool mask S_t; the token is then drawn from (1 - S_t) pi_primary + S_t pi_intervene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sparse_rlvr.core.divergence import TokenDivergence

RULES = ("js-threshold", "top-budget", "entropy", "random", "never")


@dataclass
class SwitchRule:
    """One rule and its parameter.

    - js-threshold (the paper's): swap where JS > eps; eps = 0 swaps everywhere the models differ.
    - top-budget: swap where JS is within the top `budget` fraction of the JS values seen so far
      in this response, while the swaps stay within `budget` x max_new_tokens (online: the
      future is unknown when a token must be chosen).
    - entropy: swap where the primary's entropy exceeds `threshold` nats.
    - random: swap at `positions[b]`, a set of step indices per sequence drawn in advance (the
      matched-budget control).
    - never: the primary alone.
    """

    name: str
    eps: float = 0.1
    budget: float = 0.05
    threshold: float = 1.0
    positions: list[set[int]] = field(default_factory=list)
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise ValueError(f"unknown switching rule {self.name!r}; choose one of {', '.join(RULES)}")
        if self.eps < 0 or not 0 <= self.budget <= 1 or self.threshold < 0:
            raise ValueError("eps and threshold must be >= 0 and budget in [0, 1]")

    def start(self, batch: int) -> None:
        """Reset per-response state for a new batch of `batch` sequences."""
        self._history: list[torch.Tensor] = []
        self._swaps = torch.zeros(batch, dtype=torch.long)
        if self.name == "random" and len(self.positions) != batch:
            raise ValueError(f"random rule needs positions for {batch} sequences, got {len(self.positions)}")

    def __call__(self, step: int, divergence: TokenDivergence, primary_entropy: torch.Tensor) -> torch.Tensor:
        js = divergence.js.cpu()
        if self.name == "js-threshold":
            chosen = js > self.eps
        elif self.name == "entropy":
            chosen = primary_entropy.cpu() > self.threshold
        elif self.name == "random":
            chosen = torch.tensor([step in p for p in self.positions])
        elif self.name == "top-budget":
            self._history.append(js)
            seen = torch.stack(self._history, dim=1)
            cutoff = torch.quantile(seen, 1 - self.budget, dim=1) if self.budget > 0 else torch.full_like(js, float("inf"))
            allowed = self._swaps < int(self.budget * self.max_new_tokens + 0.5)
            chosen = (js >= cutoff) & (js > 0) & allowed
        else:
            chosen = torch.zeros_like(js, dtype=torch.bool)
        self._swaps += chosen.long()
        return chosen
