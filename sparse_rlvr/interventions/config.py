"""Options of `sparse-rlvr cross-sample`, validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal


@dataclass
class CrossSampleConfig:
    """Everything that determines a cross-sampling run; saved as DIR/config.json for resumes."""

    base: str
    policy: str
    data: str
    out: str
    direction: Literal["forward", "reverse"] = "forward"
    """forward: base decodes, the RL policy intervenes (sufficiency); reverse: the opposite (necessity)."""
    rule: Literal["js-threshold", "top-budget", "entropy"] = "js-threshold"
    eps: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2])
    """js-threshold: swap where JS > eps, one run per value."""
    budgets: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1])
    """top-budget: fraction of tokens to swap, one run per value."""
    thresholds: list[float] = field(default_factory=lambda: [1.0, 2.0])
    """entropy: swap where the primary's entropy (nats) exceeds the value, one run per value."""
    random_control: bool = True
    """Beside every setting, swap the same number of tokens at random positions."""
    samples: int = 32
    temperature: float = 1.0
    top_p: float = 0.7
    max_new_tokens: int = 1024
    seed: int = 0
    prompt_column: str = "prompt"
    answer_column: str = "auto"
    """Ground truth: auto = verl's reward_model.ground_truth, else an answer/ground_truth column."""
    chat_template: bool = True
    batch_size: int = 16
    shard_size: int = 8
    """Prompts per results shard: the unit of resuming and of Ray work."""
    workers: int = 0

    def __post_init__(self) -> None:
        if self.direction not in ("forward", "reverse"):
            raise ValueError(f"--direction must be forward or reverse, got {self.direction!r}")
        if self.rule not in ("js-threshold", "top-budget", "entropy"):
            raise ValueError(f"--rule must be js-threshold, top-budget or entropy, got {self.rule!r}")
        for name in ("samples", "max_new_tokens", "batch_size", "shard_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.top_p <= 1 or not self.temperature > 0:
            raise ValueError("--top-p must be in (0, 1] and --temperature > 0")
        if any(e < 0 for e in self.eps) or any(not 0 <= b <= 1 for b in self.budgets):
            raise ValueError("--eps values must be >= 0 and --budget values in [0, 1]")

    def fingerprint(self) -> dict:
        """Settings that change the responses (a resume must match them; new eps values may be added)."""
        keep = asdict(self)
        for volatile in ("out", "workers", "eps", "budgets", "thresholds", "random_control"):
            keep.pop(volatile)
        return keep

    @property
    def out_dir(self) -> Path:
        return Path(self.out)
