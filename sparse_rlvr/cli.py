"""The `sparse-rlvr` command line: one thin Typer app, one function per command.

Heavy imports (torch, transformers, verl) live inside the command bodies so `--help` is instant.
A mistake in the input prints `error: <problem>; <fix>` and exits 2 (see `core.errors`);
`--debug` or SPARSE_RLVR_DEBUG=1 shows the traceback behind it.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sparse_rlvr.core.errors import DEBUG_ENV, UserError, run_reporting_user_errors


class App(typer.Typer):
    """Typer app whose entry point prints a `UserError` or a usage error (a missing or malformed option)
    as one `error: ...` line and exits with status 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:  # the caller handles click's exceptions itself
            return super().__call__(*args, **kwargs)
        kwargs.pop("standalone_mode", None)
        status = run_reporting_user_errors(lambda: self._run(*args, **kwargs))
        if status not in (None, 0):
            sys.exit(status)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            return 1
        except typer.TyperException as error:  # click's usage errors, vendored by typer
            if type(error).__name__ == "NoArgsIsHelpError":  # `sparse-rlvr` alone: the help, as before
                from typer import rich_utils

                rich_utils.rich_format_error(error)
                return 2
            context = getattr(error, "ctx", None)
            where = f"; see '{context.command_path} --help'" if context is not None else ""
            message = error.format_message() if hasattr(error, "format_message") else str(error)
            raise UserError(message.rstrip(".") + where) from error


class Commands(TyperGroup):
    """The command group: a UserError a command raises becomes `error: ...` and exit 2 here, so the console
    entry point and Typer's CliRunner see the same thing."""

    def invoke(self, ctx: Any) -> Any:
        return run_reporting_user_errors(lambda: super(Commands, self).invoke(ctx))


app = App(
    cls=Commands,
    name="sparse-rlvr",
    help="See and steer what RLVR (GRPO, DAPO) changes in a language model, token by token.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option(
        "--debug", help=f"Show the traceback behind an 'error: ...' line (same as {DEBUG_ENV}=1).")] = False,
) -> None:
    """sparse-rlvr: token-level analysis and steering of RLVR fine-tuning."""
    if debug:
        os.environ[DEBUG_ENV] = "1"  # child processes (ablate's runs) inherit it


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
