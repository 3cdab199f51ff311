"""`sparse-rlvr cross-sample`: does a handful of RL-chosen tokens carry the RL model's accuracy?

The options are `CrossSampleConfig`'s fields (name, type, default, help), derived by `core.config_cli`.
"""

from __future__ import annotations

from sparse_rlvr.core.config_cli import config_command
from sparse_rlvr.interventions.config import CrossSampleConfig


def run(config: CrossSampleConfig) -> None:
    """Run every setting, print the results table and where the files went."""
    from rich.console import Console
    from rich.table import Table

    from sparse_rlvr.interventions.runner import run_cross_sample

    table = run_cross_sample(config)
    view = Table(title=f"Cross-sampling ({config.direction})")
    for column in ("setting", "eff. % tokens", "eff. # tokens", "accuracy mean@k", "responses"):
        view.add_column(column, justify="right")
    for row in table:
        view.add_row(row["setting"], f"{row['effective_pct_tokens']:.2f}", f"{row['effective_n_tokens']:.1f}",
                     f"{row['accuracy']:.2f} ± {row['ci95']:.2f}", str(row["responses"]))
    console = Console()
    console.print(view)
    out = config.out_dir
    console.print(f"wrote {out / 'results.json'}, {out / 'accuracy_vs_budget.png'} and {out / 'report.html'}")


cross_sample = config_command(
    CrossSampleConfig, run,
    "Decode with one model and let the other pick the tokens where they disagree; grade with the verifier.",
)
