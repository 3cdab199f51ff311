"""`sparse-rlvr cross-sample`: does a handful of RL-chosen tokens carry the RL model's accuracy?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def cross_sample(
    base: Annotated[str, typer.Option(help="Base model: Hugging Face directory or hub id.")],
    policy: Annotated[str, typer.Option(help="RL model: Hugging Face directory or hub id (same tokenizer).")],
    data: Annotated[Path, typer.Option(help="verl-format parquet or JSONL with prompts and ground truth.")],
    out: Annotated[Path, typer.Option(help="Output directory; rerun the same command to resume.")],
    direction: Annotated[str, typer.Option(help="forward: base decodes, RL intervenes; reverse: RL decodes, base intervenes.")] = "forward",
    rule: Annotated[str, typer.Option(help="js-threshold (swap where JS > eps), top-budget, or entropy.")] = "js-threshold",
    eps: Annotated[str, typer.Option(help="Comma-separated JS thresholds, one run each (js-threshold).")] = "0.05,0.1,0.2",
    budget: Annotated[str, typer.Option(help="Comma-separated fractions of tokens (top-budget).")] = "0.02,0.05,0.1",
    threshold: Annotated[str, typer.Option(help="Comma-separated entropy thresholds in nats (entropy).")] = "1,2",
    random_control: Annotated[bool, typer.Option(help="Beside each setting, swap as many tokens at random positions.")] = True,
    samples: Annotated[int, typer.Option(help="Samples per prompt (accuracy is mean@samples).")] = 32,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (the paper: 1.0).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Sampling top-p (the paper: 0.7).")] = 0.7,
    max_new_tokens: Annotated[int, typer.Option(help="Longest response.")] = 1024,
    seed: Annotated[int, typer.Option(help="Sampling seed (shared by all settings: common random numbers).")] = 0,
    answer_column: Annotated[str, typer.Option(help="Ground-truth column; auto reads verl's reward_model.ground_truth.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Responses decoded together.")] = 16,
    shard_size: Annotated[int, typer.Option(help="Prompts per results shard (unit of resume and of Ray work).")] = 8,
    workers: Annotated[int, typer.Option(help="0: in-process; N: spread shards over N Ray actors (one GPU each).")] = 0,
) -> None:
    """Decode with one model and let the other pick the tokens where they disagree; grade with the verifier."""
    from rich.console import Console
    from rich.table import Table

    from sparse_rlvr.interventions.config import CrossSampleConfig
    from sparse_rlvr.interventions.runner import run_cross_sample

    config = CrossSampleConfig(
        base=base, policy=policy, data=str(data), out=str(out), direction=direction, rule=rule,
        eps=_floats(eps), budgets=_floats(budget), thresholds=_floats(threshold), random_control=random_control,
        samples=samples, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
        answer_column=answer_column, batch_size=batch_size, shard_size=shard_size, workers=workers,
    )
    table = run_cross_sample(config)
    view = Table(title=f"Cross-sampling ({direction})")
    for column in ("setting", "eff. % tokens", "eff. # tokens", "accuracy mean@k", "responses"):
        view.add_column(column, justify="right")
    for row in table:
        view.add_row(row["setting"], f"{row['effective_pct_tokens']:.2f}", f"{row['effective_n_tokens']:.1f}",
                     f"{row['accuracy']:.2f} ± {row['ci95']:.2f}", str(row["responses"]))
    console = Console()
    console.print(view)
    console.print(f"wrote {out / 'results.json'}, {out / 'accuracy_vs_budget.png'} and {out / 'report.html'}")
