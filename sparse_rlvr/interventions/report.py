"""Accuracy-vs-budget plot (PNG) and an HTML report with the table and highlighted examples."""

from __future__ import annotations

import base64
import html
from typing import Any

import matplotlib.pyplot as plt

from sparse_rlvr.core.figures import png_bytes


def accuracy_plot(table: list[dict[str, Any]], direction: str) -> bytes:
    """Accuracy against effective % of swapped tokens; random controls beside; both pure models as lines."""
    fig, ax = plt.subplots(figsize=(6, 4))
    by_name = {row["setting"]: row for row in table}
    for name, style, label in (("primary-only", "--", "primary only"), ("intervening-only", ":", "intervening only")):
        if name in by_name:
            ax.axhline(by_name[name]["accuracy"], ls=style, color="gray", label=label)
    budgets = [r for r in table if r["setting"] not in ("primary-only", "intervening-only") and r["rule"] != "random"]
    controls = [r for r in table if r["rule"] == "random"]
    for rows, marker, line, label in ((controls, "x", "none", "random control"), (budgets, "o", "-", "rule")):
        if rows:
            ax.errorbar([r["effective_pct_tokens"] for r in rows], [r["accuracy"] for r in rows],
                        yerr=[r["ci95"] for r in rows], marker=marker, ls=line, label=label, capsize=3)
    ax.set(xlabel="effective % of tokens swapped", ylabel="accuracy mean@k (%)", title=f"Cross-sampling, {direction}")
    ax.legend(fontsize=8)
    return png_bytes(fig)


def write_report(config: Any, table: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> None:
    """DIR/accuracy_vs_budget.png and DIR/report.html."""
    png = accuracy_plot(table, config.direction)
    (config.out_dir / "accuracy_vs_budget.png").write_bytes(png)
    header = ["setting", "effective %", "effective #", "accuracy (95% CI)", "responses"]
    rows = "".join(
        f"<tr><td>{html.escape(r['setting'])}</td><td>{r['effective_pct_tokens']:.2f}</td><td>{r['effective_n_tokens']:.1f}</td>"
        f"<td>{r['accuracy']:.2f} ± {r['ci95']:.2f}</td><td>{r['responses']}</td></tr>" for r in table
    )
    examples = "".join(_example(name, recs[0]) for name, recs in records.items() if recs and recs[0]["n_swapped"])[: 200_000]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>cross-sampling report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}}td,th{{border:1px solid #ddd;padding:2px 8px}}
table{{border-collapse:collapse}}.r{{white-space:pre-wrap;font-family:ui-monospace,monospace;border:1px solid #ddd;padding:8px}}
mark{{background:#f6b26b}}</style></head><body>
<h1>Cross-sampling: {html.escape(config.direction)}</h1>
<p>primary <code>{html.escape(config.base if config.direction == 'forward' else config.policy)}</code>, intervening
<code>{html.escape(config.policy if config.direction == 'forward' else config.base)}</code></p>
<table><tr>{''.join(f'<th>{h}</th>' for h in header)}</tr>{rows}</table>
<img alt="accuracy vs budget" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Examples (tokens chosen by the intervening model highlighted)</h2>{examples}</body></html>"""
    (config.out_dir / "report.html").write_text(page, encoding="utf-8")


def _example(setting: str, record: dict[str, Any]) -> str:
    """One response with its swapped tokens marked (token texts are reconstructed from the record)."""
    swapped = set(record["swapped_positions"])
    pieces = record.get("token_texts") or []
    if not pieces:
        return f"<h4>{html.escape(setting)}</h4><div class='r'>{html.escape(record['response'])}</div>"
    body = "".join(f"<mark>{html.escape(t)}</mark>" if i in swapped else html.escape(t) for i, t in enumerate(pieces))
    verdict = "correct" if record["acc"] else record["reason"]
    return f"<h4>{html.escape(setting)}: {record['n_swapped']} swapped, {verdict}</h4><div class='r'>{body}</div>"
