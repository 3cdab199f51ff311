"""``sparse-rlvr train``: the Typer command (registered in sparse_rlvr.cli).

Heavy imports live in the bodies so ``--help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def train(
    config_name: Annotated[str, typer.Option("--config-name", help="Recipe in sparse_rlvr/recipes/ (grpo_tiny_cpu, dapo_tiny_cpu, grpo_qwen2p5_math_7b, ...); default: verl's ppo_trainer + the sparse_rlvr section.")] = "sparse_rlvr_trainer",
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Hydra overrides, e.g. trainer.total_training_steps=5 sparse_rlvr.weighting.scale=1.")] = None,
) -> None:
    """Run a recipe through verl's trainer with sparse_rlvr's plugins (same as python -m sparse_rlvr.train).

    verl prints per-step metrics (token_shift/ among them) on the console and to its loggers;
    checkpoints go to trainer.default_local_dir. CPU recipes need no GPU.
    """
    from sparse_rlvr.training.verl_glue.launch import train as run

    run(config_name, list(overrides or []))
