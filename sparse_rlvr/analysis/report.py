"""report.html: one self-contained file with the figures and a token heatmap with hover details.

Model text never becomes markup: token data travels as JSON in a `<script type="application/json">`
element with <, > and & escaped, and the page's script shows it through textContent only. Token
colours come from `sparse_rlvr.core.js_scale`, the W&B heatmap's scale, precomputed per token.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

import pandas as pd

from sparse_rlvr.analysis.figures import all_figures
from sparse_rlvr.core.js_scale import JS_FLOOR, js_color

MAX_TOKENS_PER_SAMPLE = 200

HEATMAP_STYLE = """
.sample{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.7;border:1px solid #ddd;padding:8px;margin:8px 0}
.t{cursor:default;border-radius:2px}
#tip{position:fixed;display:none;background:#fff;border:1px solid #888;padding:6px;font:12px ui-monospace,monospace;box-shadow:2px 2px 6px #0003;z-index:9}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
"""
"""CSS of the heatmap and its hover box (heatmap_section); pages add their own body style."""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0}
""" + HEATMAP_STYLE

_SCRIPT = """
const TOKENS = JSON.parse(document.getElementById('tokens').textContent);
const tip = document.getElementById('tip');
// model text only ever reaches the page as textContent: a token is never parsed as markup
function el(tag, text){const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e;}
function cands(list){const td = el('td');
  list.forEach((c, k) => {if (k) td.appendChild(el('br')); td.appendChild(document.createTextNode(`${c[0]} ${c[1].toFixed(3)}`));});
  return td;}
function show(span, x, y){const d = TOKENS[span.dataset.s][span.dataset.i];
  const head = el('tr'); head.append(el('th', 'base'), el('th', 'policy'));
  const row = el('tr'); row.append(cands(d[3]), cands(d[4]));
  const table = el('table'); table.append(head, row);
  tip.replaceChildren(el('b', JSON.stringify(d[0])), document.createTextNode(` JS ${d[1].toExponential(2)}`), el('br'), table);
  tip.style.display = 'block'; tip.style.left = (x + 12) + 'px'; tip.style.top = (y + 12) + 'px';}
document.querySelectorAll('.sample').forEach((div, s) => {
  TOKENS[s].forEach((d, i) => {const span = el('span', d[0]);
    span.className = 't'; span.dataset.s = s; span.dataset.i = i;
    span.style.background = d[2]; div.appendChild(span);});});  // colour computed in Python (core.js_scale)
document.addEventListener('mouseover', e => {if (e.target.classList.contains('t')) show(e.target, e.clientX, e.clientY);});
document.addEventListener('mouseout', e => {if (e.target.classList.contains('t')) tip.style.display = 'none';});
const hover = location.hash.match(/^#hover=(\\d+)$/);  // #hover=N shows token N of sample 0 (for tests and links)
if (hover) {const span = document.querySelectorAll('.sample')[0].children[+hover[1]]; if (span) show(span, 20, 20);}
"""

_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
"""JSON escapes for text inside <script>: no `</script>`, `<!--` or line separator can appear raw."""


def render_report(summary: dict, tokens: pd.DataFrame, decode: Any, samples: int) -> str:
    """The HTML page: summary numbers, inline PNG figures, and a JS heatmap of `samples` responses.

    `tokens` holds per-token rows (sample_id, token, js, base/policy_top_ids/probs); `decode`
    maps a token id to its text, for the hover candidates.
    """
    figures = figures_html(all_figures(summary))
    sample_ids = list(dict.fromkeys(tokens["sample_id"].tolist()))[:samples]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sparse_rlvr token-shift report</title>
<style>{_STYLE}</style></head><body>
<h1>Token-shift report</h1>
<p>base <code>{html.escape(str(summary.get('base', '')))}</code> vs policy <code>{html.escape(str(summary.get('policy', '')))}</code></p>
{_headline(summary)}
<h2>Figures</h2><div class="figs">{figures}</div>
<h2>Token heatmap</h2><p>Tokens coloured by JS(base, policy) on a log scale from {JS_FLOOR:g} (white) to ln 2 (red);
hover a token for the top candidates and their probabilities under both models.</p>
{heatmap_section(tokens, decode, sample_ids)}
</body></html>"""


def figures_html(figures: dict[str, bytes]) -> str:
    """Inline PNG figures (title -> PNG bytes) as <figure> elements with escaped captions."""
    return "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, png in figures.items()
    )


def _headline(summary: dict) -> str:
    percentiles = summary["js"]["percentiles"]
    rows = [("tokens analysed", summary["counts"]["tokens_analysed"]),
            ("JS mean", f"{summary['js']['mean']:.4g}")]
    rows += [(f"JS p{p}", f"{percentiles[p]:.3g}") for p in ("50", "90", "99")]
    rows += [(f"fraction JS < {c}", f"{v:.1%}") for c, v in summary["fraction_below"].items()]
    rows += [(f"fraction JS > {summary['high_cutoff']}", f"{summary['fraction_above_high']:.1%}"),
             ("top-1 agreement", f"{summary['top1_agreement']:.1%}")]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def heatmap_section(tokens: pd.DataFrame, decode: Any, sample_ids: list[int], labels: list[str] | None = None) -> str:
    """The heatmaps of `sample_ids` (in that order), the hover box and the script that draws them.

    Needs HEATMAP_STYLE in the page. `labels` (plain text, escaped here) head each sample; the
    default is "sample <id>". Model text reaches the page only as JSON read through textContent.
    """
    heatmap = _heatmap_data(tokens, decode, sample_ids)
    labels = labels or [f"sample {sid}" for sid in heatmap["ids"]]
    divs = "".join(f'<h4>{html.escape(label)}</h4><div class="sample"></div>' for label in labels)
    return (f'{divs}<div id="tip"></div>\n<script type="application/json" id="tokens">{script_json(heatmap["tokens"])}'
            f"</script>\n<script>{_SCRIPT}</script>")


def _heatmap_data(tokens: pd.DataFrame, decode: Any, ids: list[int]) -> dict:
    """Compact per-token data: [text, js, colour, base candidates, policy candidates] per sample."""
    data = []
    for sid in ids:
        rows = tokens[tokens["sample_id"] == sid].head(MAX_TOKENS_PER_SAMPLE)
        data.append([
            [row.token, _round(row.js), js_color(row.js),
             [[decode(int(t)), _round(p)] for t, p in zip(row.base_top_ids, row.base_top_probs)],
             [[decode(int(t)), _round(p)] for t, p in zip(row.policy_top_ids, row.policy_top_probs)]]
            for row in rows.itertuples()
        ])
    return {"ids": ids, "tokens": data}


def script_json(value: Any) -> str:
    """`value` as JSON that is inert inside a <script> element: <, >, & and U+2028/9 as \\u escapes."""
    return json.dumps(value, separators=(",", ":")).translate(_SCRIPT_SAFE)


def _round(value: float) -> float:
    return float(f"{value:.3g}") if math.isfinite(value) else 0.0
