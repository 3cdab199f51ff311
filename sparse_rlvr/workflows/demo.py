"""`sparse-rlvr demo`: the paper in miniature, end to end through the product, on CPU (the main job).

Trains a tiny base model on a task with planted forks, runs GRPO through verl, measures the shift
with `sparse-rlvr shift`, intervenes with `sparse-rlvr cross-sample`, and writes OUT/report.html and
OUT/results.json (workflows/miniature/pipeline.py). `--full` adds the weighting ablation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option(help="Run directory: base model, data, checkpoints, analyses, report.html, "
                                           "results.json. Rerun the same command to resume.")] = Path("runs/demo"),
    full: Annotated[bool, typer.Option("--full", help="Add the weighting ablation: 5 settings x 3 seeds of GRPO "
                                                      "through `sparse-rlvr ablate` (about 15 more verl runs).")] = False,
) -> None:
    """The paper in miniature: RLVR's few, critical token edits on a model that learns, in < 10 minutes on CPU."""
    from rich.console import Console

    from sparse_rlvr.core.inputs import check_out_dir
    from sparse_rlvr.workflows.miniature.pipeline import DemoSettings, Display, Pipeline

    check_out_dir(out, "--out")
    console = Console()
    pipeline = Pipeline(out, DemoSettings(), Display(console))
    results = pipeline.run(full=full)
    _print_findings(console, results)
    console.print(f"report: {pipeline.out / 'report.html'}   numbers: {pipeline.out / 'results.json'}")
    wandb_runs = sorted((pipeline.out / "wandb").glob("offline-run-*"))
    if wandb_runs:
        console.print(f"offline W&B run of the GRPO stage: {wandb_runs[-1]}  (upload: wandb sync {wandb_runs[-1]})")


def _print_findings(console, results: dict) -> None:
    from rich.table import Table

    s = results["shift"]
    table = Table(title=f"The paper in miniature ({results['wall_s']:.0f} s)", show_header=False)
    table.add_row("held-out accuracy, base -> RL", f"{results['base_accuracy']:.3f} -> {results['rl_accuracy']:.3f}")
    table.add_row("response tokens with JS < 1e-3", f"{s['frac_js_below_1e-3']:.1%}")
    table.add_row("planted forks among the top 5% JS positions", f"{s['planted_fork_recall_top5pct']:.1%}")
    for direction, rows in results["cross_sampling"].items():
        for row in rows:
            table.add_row(f"{direction} cross-sampling, eps {row['eps']:g} ({row['swapped_frac']:.1%} swapped)",
                          f"{row['accuracy']:.3f}   random control {row['random_control_accuracy']:.3f}")
    for name, row in results.get("ablation", {}).items():
        table.add_row(f"ablation: {name}", f"final accuracy {row['final_accuracy']}, steps to target {row['steps_to_target']}")
    console.print(table)
