"""`sparse-rlvr shift`: where and how RLVR changed a model, token by token."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def shift(
    base: Annotated[str, typer.Option(help="Base model: Hugging Face directory or hub id.")],
    policy: Annotated[list[str], typer.Option(help="RL checkpoint(s); repeat for the evolution over training steps.")],
    data: Annotated[Path, typer.Option(help="JSONL or parquet: prompts and responses, or verl-format prompts with --sequences policy|base.")],
    out: Annotated[Path, typer.Option(help="Output directory (per-token parquet shards, summary.json, report.html); rerun to resume.")],
    sequences: Annotated[str, typer.Option(help="file: the file's responses; policy or base: sample --generate N per prompt from that model.")] = "file",
    generate: Annotated[int, typer.Option(help="Responses sampled per prompt with --sequences policy|base.")] = 1,
    prompt_column: Annotated[str, typer.Option(help="Column with the prompt (text or chat list).")] = "prompt",
    response_column: Annotated[str, typer.Option(help="Column with the response (text or token ids).")] = "response",
    chat_template: Annotated[bool, typer.Option(help="Apply the tokenizer's chat template to text prompts.")] = True,
    max_new_tokens: Annotated[int, typer.Option(help="Sampling: longest response.")] = 512,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (the paper: 1.0).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Sampling top-p (the paper: 0.7).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed (per shard, so resumed runs match).")] = 0,
    max_length: Annotated[Optional[int], typer.Option(help="Longest prompt+response scored (default: model context); longer responses are cut and counted.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 8,
    shard_size: Annotated[int, typer.Option(help="Rows per output shard (the unit of resume and of Ray work).")] = 64,
    high: Annotated[float, typer.Option(help="JS above this counts as high divergence.")] = 0.1,
    cutoffs: Annotated[str, typer.Option(help="Comma-separated near-zero cutoffs for the fractions below.")] = "1e-4,1e-3,1e-2",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, float32 on CPU), float32, bfloat16 or float16.")] = "auto",
    workers: Annotated[int, typer.Option(help="0: in-process; N: shard over N Ray actors (one GPU each).")] = 0,
    report_samples: Annotated[int, typer.Option(help="Responses shown in the report's heatmap.")] = 8,
) -> None:
    """Token-level shift statistics between a base and an RL checkpoint, with figures and an HTML heatmap."""
    from rich.console import Console

    from sparse_rlvr.analysis.config import ShiftConfig
    from sparse_rlvr.analysis.console import print_summary
    from sparse_rlvr.analysis.runner import run_shift

    config = ShiftConfig(
        base=base, policies=policy, data=str(data), out=str(out), sequences=sequences, generate=generate,
        prompt_column=prompt_column, response_column=response_column, chat_template=chat_template,
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
        max_length=max_length, batch_size=batch_size, shard_size=shard_size, high=high,
        cutoffs=[float(c) for c in cutoffs.split(",") if c.strip()], dtype=dtype, workers=workers,
        report_samples=report_samples,
    )
    summary = run_shift(config)
    console = Console()
    print_summary(console, summary)
    console.print(f"wrote {out / 'summary.json'} and {out / 'report.html'}")
