"""Options of `sparse-rlvr shift`, validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

SequenceSource = Literal["file", "policy", "base"]
LOGITS_BUDGET_BYTES = 128 << 20


@dataclass
class ShiftConfig:
    """Everything that determines a shift analysis run; saved as DIR/config.json for resumes."""

    base: str
    """Base model: a Hugging Face directory or hub id."""
    policies: list[str]
    """One or more RL checkpoints; several give the evolution of the statistics over training."""
    data: str
    """JSONL or parquet file with prompts, and responses unless sequences are generated."""
    out: str
    """Output directory: per-token parquet shards, summary.json, report.html."""
    sequences: SequenceSource = "file"
    """Teacher-force the file's responses, or sample `generate` responses from the policy or base."""
    generate: int = 1
    """Responses sampled per prompt when `sequences` is policy or base."""
    prompt_column: str = "prompt"
    response_column: str = "response"
    """Text responses, or token-id lists (then used as is)."""
    chat_template: bool = True
    """Apply the tokenizer's chat template to text prompts (chat-list prompts always use it)."""
    max_new_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    max_length: int | None = None
    """Longest prompt + response scored; longer responses are cut and counted (default: the model's context)."""
    batch_size: int = 8
    shard_size: int = 64
    """Sequences per parquet shard: the unit of resuming and of work for Ray workers."""
    token_chunk: int | None = None
    """Tokens whose logits are materialised at once (per model), so memory stays O(chunk x V);
    default: as many as fit LOGITS_BUDGET_BYTES of float32 logits (~220 tokens at V = 152k)."""
    top_k: int = 10
    candidates: int = 5
    """Top candidates stored per token (ids and probabilities under each model) for the report."""
    cutoffs: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2])
    high: float = 0.1
    """JS above this is 'high divergence' (the paper's fine-grained analyses)."""
    dtype: str = "auto"
    workers: int = 0
    """0: in-process; N: shard the work over N Ray actors (one GPU each when GPUs exist)."""
    report_samples: int = 8

    def __post_init__(self) -> None:
        if self.sequences not in ("file", "policy", "base"):
            raise ValueError(f"--sequences must be file, policy or base, got {self.sequences!r}")
        for name in ("generate", "max_new_tokens", "batch_size", "shard_size", "token_chunk"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not self.policies:
            raise ValueError("give at least one --policy checkpoint")
        if not 0 < self.top_p <= 1 or not self.temperature > 0:
            raise ValueError("--top-p must be in (0, 1] and --temperature > 0")
        if self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"--dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")

    def fingerprint(self) -> dict:
        """The settings that change per-token results (a resume must match them)."""
        keep = asdict(self)
        for volatile in ("out", "workers", "report_samples", "batch_size", "token_chunk", "cutoffs", "high"):
            keep.pop(volatile)
        return keep

    @property
    def out_dir(self) -> Path:
        return Path(self.out)
