"""`sparse-rlvr demo`: a tiny divergence-weighted GRPO run through verl on CPU, and what it logged.

Builds a tiny warm-started model and arithmetic data in code, runs sparse_rlvr/recipes/grpo_tiny_cpu.yaml
(verl's V1 trainer, sparse_rlvr's single pass, weighted advantages, token-shift monitor) with an
offline W&B run and the RL Logging Board dump, then prints the token_shift/ metrics per step and
writes the last step's responses as an HTML token heatmap. No GPU, no downloads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SHOWN = {
    "critic/score/mean": "score",
    "token_shift/js_mean": "JS mean",
    "token_shift/js_p99": "JS p99",
    "token_shift/js_max": "JS max",
    "token_shift/frac_js_below_0.001": "JS<.001",
    "token_shift/top1_agreement": "top1 =",
    "token_shift/weight_max": "w max",
}


def demo(
    out: Annotated[Path, typer.Option(help="Run directory: tiny model and data, checkpoints, logs, W&B run, heatmaps.")] = Path("runs/demo"),
    steps: Annotated[int, typer.Option(help="GRPO steps (each ~3-10 s on 2 cores).")] = 4,
    scale: Annotated[float, typer.Option(help="Weighting strength s in [0, 2] (0 = plain GRPO).")] = 1.0,
    alpha: Annotated[float, typer.Option(help="Sigmoid slope: > 0 boosts high-JS tokens, < 0 low-JS ones.")] = 20.0,
) -> None:
    """Tiny divergence-weighted GRPO through verl on CPU; prints the token-shift metrics it logged."""
    check_demo_options(out, steps, scale)
    from rich.console import Console
    from rich.markup import escape

    from sparse_rlvr.workflows.recipe_run import run_recipe
    from sparse_rlvr.workflows.tiny_assets import make_tiny_assets

    console = Console()
    out = out.resolve()
    with console.status("making the tiny model (warm-started on the answer format) and data"):
        tiny = make_tiny_assets(out / "tiny", train_rows=64, test_rows=8)
    board = out / "logging_board"
    overrides = [
        f"trainer.total_training_steps={steps}", f"sparse_rlvr.weighting.scale={scale}", f"sparse_rlvr.weighting.alpha={alpha}",
        "trainer.logger=[console,file,wandb]", f"sparse_rlvr.monitor.logging_board_dir={board}", "trainer.save_freq=-1",
        "trainer.experiment_name=demo", "trainer.resume_mode=disable",
    ]
    console.print(f"[bold]sparse-rlvr train --config-name grpo_tiny_cpu[/bold] {escape(' '.join(overrides))}")
    with console.status(f"verl: {steps} divergence-weighted GRPO steps on CPU (Ray, FSDP2 actor + reference, hf rollout)"):
        run = run_recipe("grpo_tiny_cpu", overrides, tiny, out, timeout_s=1800,
                         env={"WANDB_MODE": "offline", "WANDB_DIR": str(out), "WANDB_SILENT": "true"})
    (out / "train.log").write_text(run.log)
    if run.returncode != 0:
        console.print(run.log[-3000:])
        raise typer.Exit(f"the training run failed (exit {run.returncode}); full log: {out / 'train.log'}")
    _print_metrics(console, run.records, run.wall_s)
    heatmaps = _write_heatmaps(board, out / "heatmaps.html")
    wandb_runs = sorted((out / "wandb").glob("offline-run-*"))
    console.print(f"verl's log: {out / 'train.log'}; metrics per step: {out / 'metrics'}")
    if heatmaps:
        console.print(f"token heatmaps of the last step (hover a token): {heatmaps}")
    if wandb_runs:
        console.print(f"offline W&B run: {wandb_runs[-1]}  (upload with: wandb sync {wandb_runs[-1]})")


def check_demo_options(out: Path, steps: int, scale: float) -> None:
    """Refuse bad options in a second, before the tiny model is built and verl starts."""
    from sparse_rlvr.core.errors import UserError
    from sparse_rlvr.core.inputs import check_out_dir

    check_out_dir(out, "--out")
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}; the demo needs at least one GRPO step")
    if not 0 <= scale <= 2:
        raise UserError(f"--scale must be in [0, 2] (0 = plain GRPO), got {scale:g}; the paper's runs use 1")


def _print_metrics(console, records: list[dict], wall_s: float) -> None:
    from rich.table import Table

    table = Table(title=f"token_shift/ metrics logged by verl ({len(records)} steps, {wall_s:.0f} s)")
    table.caption = "top1 = : share of tokens where the policy's top-1 is the base's; w max: largest divergence weight"
    table.add_column("step", justify="right")
    for label in SHOWN.values():
        table.add_column(label, justify="right", min_width=7)
    for record in records:
        data = record["data"]
        table.add_row(str(record["step"]), *(_fmt(data.get(key)) for key in SHOWN))
    console.print(table)
    console.print("JS is exact over the full vocabulary, between the reference (base) model and the policy that "
                  "sampled the step; w = 1 + s * (sigmoid(alpha * JS) - 1/2) scales each token's advantage.")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.2g}"


def _write_heatmaps(board: Path, out: Path) -> Path | None:
    """The last dumped step's responses as one HTML page of token heatmaps."""
    from sparse_rlvr.training.monitor.logging_board import read_logging_board, sample_from_record
    from sparse_rlvr.training.monitor.media import JS_FLOOR, response_heatmap_html

    steps = read_logging_board(board) if board.is_dir() else {}
    if not steps:
        return None
    last = max(steps)
    samples = [sample_from_record(record) for record in steps[last]]
    # full colour at the step's largest JS (early in training it is tiny), never below the colour floor
    vmax = max([s.max_js for s in samples] + [10 * JS_FLOOR])
    body = "\n".join(response_heatmap_html(sample, vmax=vmax) for sample in samples)
    out.write_text(f"<!doctype html><meta charset='utf-8'><title>sparse_rlvr token heatmaps</title>"
                   f"<h2>step {last}: tokens coloured by JS(base, policy)</h2>{body}")
    return out

