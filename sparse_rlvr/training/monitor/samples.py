"""One response of a training step with its per-token shift data, and the choice of which to show.

The driver builds a `ShiftSample` per response (response tokens only, padding removed) from the
step's batch; the token-shift media (W&B/TensorBoard) and the RL Logging Board dump read them.
Logging every response of every step is too much for a dashboard, so `pick_samples` keeps a few
informative ones: the most and the least shifted response, and random ones for an unbiased view.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_PER_TOKEN = ("token_ids", "logprobs", "ref_logprobs", "entropy", "js")
_OPTIONAL_PER_TOKEN = ("advantages", "weights", "token_rewards")


@dataclass
class ShiftSample:
    """One response of the step's batch, response tokens only (every per-token list has len(tokens))."""

    uid: str
    """Prompt group id (verl's `uid`): the responses of one GRPO group share it."""
    prompt: str
    response: str
    tokens: list[str]
    """Each response token decoded on its own (model output: never trusted as HTML)."""
    token_ids: list[int]
    logprobs: list[float]
    """Policy (old) log-prob of each sampled token."""
    ref_logprobs: list[float]
    """Base/reference log-prob of each sampled token."""
    entropy: list[float]
    """Policy entropy per token."""
    js: list[float]
    """Exact JS(base, policy) per token, natural log, in [0, ln 2]."""
    reward: float
    """Sequence score."""
    advantages: list[float] | None = None
    weights: list[float] | None = None
    """Divergence weights w per token (divergence-weighted advantages), if used."""
    token_rewards: list[float] | None = None
    """verl's token_level_rewards row, if known; None means the score sits on the last token."""
    prompt_ids: list[int] | None = None
    """The prompt's token ids as the model saw them (to recompute the shift offline)."""
    ground_truth: str | None = None
    """The reference answer the reward was graded against (verl's reward_model.ground_truth), if known."""

    def __post_init__(self) -> None:
        n = len(self.tokens)
        for name in _PER_TOKEN + _OPTIONAL_PER_TOKEN:
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"ShiftSample {self.uid!r}: {name} has {len(values)} values for {n} tokens")

    @property
    def mean_js(self) -> float:
        """Mean JS over the response's finite values (0 for an empty response)."""
        values = [v for v in self.js if math.isfinite(v)]
        return sum(values) / len(values) if values else 0.0

    @property
    def max_js(self) -> float:
        """Largest finite JS of the response (0 for an empty response)."""
        return max((v for v in self.js if math.isfinite(v)), default=0.0)


def pick_samples(samples: list[ShiftSample], k: int, seed: int = 0) -> list[ShiftSample]:
    """Up to k distinct samples: highest mean JS, lowest mean JS, then random ones (fixed by seed).

    Empty responses are never picked as the highest/lowest; ties go to the earlier sample.
    """
    if k <= 0 or not samples:
        return []
    order = [i for i in range(len(samples)) if samples[i].tokens]
    chosen: list[int] = []
    if order:
        chosen.append(max(order, key=lambda i: (samples[i].mean_js, -i)))
        lowest = min(order, key=lambda i: (samples[i].mean_js, i))
        if lowest not in chosen:
            chosen.append(lowest)
    rest = [i for i in range(len(samples)) if i not in chosen]
    random.Random(seed).shuffle(rest)
    return [samples[i] for i in (chosen + rest)[:k]]
