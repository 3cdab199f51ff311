"""Print a shift summary as Rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_summary(console: Console, summary: dict) -> None:
    """The headline numbers, then the tokens most often high-divergence."""
    table = Table(title="Token shift: base vs policy")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    counts = summary["counts"]
    table.add_row("responses / tokens analysed", f"{counts.get('sequences', 0)} / {counts['tokens_analysed']}")
    table.add_row("skipped empty / truncated", f"{counts.get('empty', 0)} / {counts.get('truncated', 0)}")
    table.add_row("JS mean / max", f"{summary['js']['mean']:.4g} / {summary['js']['max']:.4g}")
    for p in ("50", "90", "95", "99"):
        table.add_row(f"JS p{p}", f"{summary['js']['percentiles'][p]:.3g}")
    for cutoff, fraction in summary["fraction_below"].items():
        table.add_row(f"tokens with JS < {cutoff}", f"{fraction:.1%}")
    table.add_row(f"tokens with JS > {summary['high_cutoff']}", f"{summary['fraction_above_high']:.1%}")
    position = summary["by_position"]
    table.add_row("JS mean: first / last token", f"{position['first_token_mean']:.3g} / {position['last_token_mean']:.3g}")
    table.add_row("top-1 agreement", f"{summary['top1_agreement']:.1%}")
    high = summary["high_divergence"]
    if high["tokens"]:
        table.add_row("high-JS: policy top-1 in base top-1 / top-3",
                      f"{high['policy_top1_within_base_top1']:.1%} / {high['policy_top1_within_base_top3']:.1%}")
        table.add_row("high-JS: base prob of policy top-1 < 0.01", f"{high['fraction_base_prob_below_0.01']:.1%}")
    console.print(table)
    if summary["top_tokens"]:
        tokens = Table(title="Tokens most often high-divergence")
        for column in ("token", "high", "total", "share high"):
            tokens.add_column(column, justify="right")
        for row in summary["top_tokens"][:10]:
            tokens.add_row(repr(row["token"]), str(row["high_count"]), str(row["total_count"]), f"{row['fraction_high']:.0%}")
        console.print(tokens)
