"""Options of `sparse-rlvr shift`: one documented, validated field each (the CLI is derived from them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparse_rlvr.core.run_config import RunConfig, option, redefine, refuse

SequenceSource = Literal["file", "policy", "base"]
LOGITS_BUDGET_BYTES = 128 << 20


@dataclass(kw_only=True)
class ShiftConfig(RunConfig):
    """Everything that determines a shift analysis run; saved as DIR/config.json for resumes."""

    policies: list[str] = option(
        "RL checkpoint(s); repeat for the evolution over training steps.", group="models", flag="policy")
    data: str = redefine(RunConfig, "data", help=(
        "JSONL or parquet: prompts and responses, or verl-format prompts with --sequences policy|base."))
    out: str = redefine(RunConfig, "out", help=(
        "Output directory (per-token parquet shards, summary.json, report.html); rerun to resume."))
    response_column: str = option("Column with the response (text or token ids, used as is).", "response", group="data")
    sequences: SequenceSource = option(
        "file: the file's responses; policy or base: sample --generate N per prompt from that model.", "file")
    generate: int = option("Responses sampled per prompt with --sequences policy|base.", 1)
    max_length: int | None = option(
        "Longest prompt+response scored (default: model context); longer responses are cut and counted.", None)
    top_k: int = option(
        "Top-k sets compared per token (overlap of the two models' k most likely tokens); not a sampling filter.", 10)
    candidates: int = option("Top candidates stored per token (ids and probabilities under each model) for the report.", 5)
    cutoffs: list[float] = option(
        "Comma-separated near-zero cutoffs for the fractions below.", default_factory=lambda: [1e-4, 1e-3, 1e-2])
    high: float = option("JS above this counts as high divergence (the paper's fine-grained analyses).", 0.1)
    report_samples: int = option("Responses shown in the report's heatmap.", 8)
    token_chunk: int | None = option(
        "Tokens whose logits are materialised at once per model, so memory stays O(chunk x vocabulary) "
        "(default: as many as fit 128 MiB of float32 logits, ~220 tokens at a 152k vocabulary).", None, group="run")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sequences not in ("file", "policy", "base"):
            raise refuse(self, "sequences", "file, policy or base", "file scores the data's responses")
        if not self.policies:
            raise refuse(self, "policies", "at least one RL checkpoint", "repeat --policy for several")
        for name in ("generate", "top_k", "candidates", "max_length", "token_chunk"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise refuse(self, name, ">= 1", "give a positive count")
        if self.report_samples < 0:
            raise refuse(self, "report_samples", ">= 0", "0 leaves the heatmap out")

    def check_inputs(self) -> list[str]:
        """The shared checks, each --policy, and the response column when responses come from the file."""
        from sparse_rlvr.core.inputs import check_model, require_columns

        columns = super().check_inputs()
        for policy in self.policies:
            check_model(policy, "--policy")
        if self.sequences == "file":
            require_columns(columns, {self.response_column: (
                "--response-column, or sample responses with --sequences policy --generate N")}, self.data)
        return columns

    def fingerprint(self) -> dict:
        """The settings that change per-token results (a resume must match them)."""
        return self.settings("workers", "report_samples", "batch_size", "token_chunk", "cutoffs", "high")
