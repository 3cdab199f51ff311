"""The `sparse-rlvr` command line: one thin Typer app, one function per command.

Heavy imports (torch, transformers, verl) live inside the command bodies so `--help` is instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sparse-rlvr",
    help="See and steer what RLVR (GRPO, DAPO) changes in a language model, token by token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """sparse-rlvr: token-level analysis and steering of RLVR fine-tuning."""


from sparse_rlvr.analysis.cli import shift  # noqa: E402
from sparse_rlvr.core.verification.cli import grade  # noqa: E402
from sparse_rlvr.interventions.cli import cross_sample  # noqa: E402
from sparse_rlvr.training.cli import train  # noqa: E402
from sparse_rlvr.workflows.demo import demo  # noqa: E402
from sparse_rlvr.workflows.demo_shift import demo as demo_shift  # noqa: E402
from sparse_rlvr.workflows.tiny_assets import make_tiny  # noqa: E402
from sparse_rlvr.workflows.data_prep import prepare_data_command  # noqa: E402
from sparse_rlvr.workflows.ablation import ablate_command  # noqa: E402

app.command("demo")(demo)
app.command("demo-shift")(demo_shift)
app.command("shift")(shift)
app.command("cross-sample")(cross_sample)
app.command("grade")(grade)
app.command("make-tiny")(make_tiny)
app.command("train")(train)
app.command("prepare-data")(prepare_data_command)
app.command("ablate")(ablate_command)

if __name__ == "__main__":
    app()
