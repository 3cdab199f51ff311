"""Options of `sparse-rlvr cross-sample`: one documented, validated field each (the CLI is derived from them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparse_rlvr.core.run_config import RunConfig, option, redefine, refuse

DIRECTIONS = ("forward", "reverse")
SWITCH_RULES = ("js-threshold", "top-budget", "entropy")
AUTO_ANSWER_COLUMNS = ("ground_truth", "answer", "solution")
"""Where --answer-column auto looks for the ground truth after verl's reward_model.ground_truth, in order."""


@dataclass(kw_only=True)
class CrossSampleConfig(RunConfig):
    """Everything that determines a cross-sampling run; saved as DIR/config.json for resumes."""

    policy: str = option("RL model: Hugging Face directory or hub id (same tokenizer).", group="models")
    data: str = redefine(RunConfig, "data", help="verl-format parquet or JSONL with prompts and ground truth.")
    answer_column: str = option(
        "Ground-truth column; auto reads verl's reward_model.ground_truth, else a ground_truth, answer or "
        "solution column.", "auto", group="data")
    direction: Literal["forward", "reverse"] = option(
        "forward: base decodes, RL intervenes (sufficiency); reverse: RL decodes, base intervenes (necessity).", "forward")
    rule: Literal["js-threshold", "top-budget", "entropy"] = option(
        "js-threshold (swap where JS > eps, the paper's), top-budget, or entropy.", "js-threshold")
    eps: list[float] = option(
        "Comma-separated JS thresholds, one run each (js-threshold).", default_factory=lambda: [0.05, 0.1, 0.2])
    budgets: list[float] = option(
        "Comma-separated fractions of tokens, one run each (top-budget).", default_factory=lambda: [0.02, 0.05, 0.1],
        flag="budget")
    thresholds: list[float] = option(
        "Comma-separated entropy thresholds in nats, one run each (entropy: swap where the primary's entropy exceeds it).",
        default_factory=lambda: [1.0, 2.0], flag="threshold")
    random_control: bool = option("Beside each setting, swap as many tokens at random positions.", True)
    samples: int = option("Samples per prompt (accuracy is mean@samples).", 32)
    top_p: float = redefine(RunConfig, "top_p", default=0.7)
    max_new_tokens: int = redefine(RunConfig, "max_new_tokens", default=1024)
    seed: int = redefine(RunConfig, "seed", help="Sampling seed (shared by all settings: common random numbers).")
    batch_size: int = redefine(RunConfig, "batch_size", default=16)
    shard_size: int = redefine(RunConfig, "shard_size", default=8)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.direction not in DIRECTIONS:
            raise refuse(self, "direction", "forward or reverse", "forward tests sufficiency, reverse necessity")
        if self.rule not in SWITCH_RULES:
            raise refuse(self, "rule", "js-threshold, top-budget or entropy", "js-threshold is the paper's rule")
        if self.samples < 1:
            raise refuse(self, "samples", ">= 1", "give a positive count")
        if any(e < 0 for e in self.eps):
            raise refuse(self, "eps", "JS values >= 0", "0 swaps wherever the models differ")
        if any(not 0 <= b <= 1 for b in self.budgets):
            raise refuse(self, "budgets", "fractions in [0, 1]", "e.g. 0.02,0.05,0.1")
        if any(t < 0 for t in self.thresholds):
            raise refuse(self, "thresholds", "entropies >= 0 (nats)", "e.g. 1,2")

    def check_inputs(self) -> list[str]:
        """The shared checks, --policy, and the ground-truth column (the one named, or one auto finds)."""
        from sparse_rlvr.core.errors import MissingColumnError
        from sparse_rlvr.core.inputs import check_model, require_columns

        columns = super().check_inputs()
        check_model(self.policy, "--policy")
        if self.answer_column != "auto":
            require_columns(columns, {self.answer_column: "--answer-column"}, self.data)
        elif not {"reward_model", *AUTO_ANSWER_COLUMNS} & set(columns):
            raise MissingColumnError(f"{self.data} has no ground truth (columns found: {', '.join(columns)}); "
                                     "name it with --answer-column")
        return columns

    def fingerprint(self) -> dict:
        """Settings that change the responses (a resume must match them; new eps values may be added)."""
        return self.settings("workers", "eps", "budgets", "thresholds", "random_control")
