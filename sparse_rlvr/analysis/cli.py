"""`sparse-rlvr shift`: where and how RLVR changed a model, token by token.

The options are `ShiftConfig`'s fields (name, type, default, help), derived by `core.config_cli`.
"""

from __future__ import annotations

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.core.config_cli import config_command


def run(config: ShiftConfig) -> None:
    """Run the analysis, print the headline statistics and where the files went."""
    from rich.console import Console

    from sparse_rlvr.analysis.console import print_summary
    from sparse_rlvr.analysis.runner import run_shift

    summary = run_shift(config)
    console = Console()
    print_summary(console, summary)
    console.print(f"wrote {config.out_dir / 'summary.json'} and {config.out_dir / 'report.html'}")


shift = config_command(
    ShiftConfig, run,
    "Token-level shift statistics between a base and an RL checkpoint, with figures and an HTML heatmap.",
)
