"""Token-shift monitor media for verl's trackers: a JS histogram per step and token heatmaps.

The driver calls `log_token_shift_media(tracking, step, js, samples)` once per step with verl's
own `Tracking` and `global_steps`, next to the `token_shift/*` scalars (metrics.py):
- `token_shift/js_histogram`, `token_shift/log10_js_histogram`: W&B histograms, and the same
  counts as TensorBoard histograms when that backend is active;
- `token_shift/heatmaps`: a W&B table, one row per picked response, whose `heatmap` cell is a
  self-contained HTML heatmap (`response_heatmap_html`) with a tooltip per token.
Other backends (console, file, mlflow, ...) get nothing: scalars already reach them.

    picked = pick_samples(samples, k=4, seed=step)                # a few informative responses
    log_token_shift_media(tracking, step, js[response_mask.bool()], picked)
    tracking.log(metrics, step=step)                              # verl's own log of the step

W&B steps: a step below the run's current step is dropped by W&B (with its warning), so call this
before or after verl's `tracking.log(metrics, step)` of the same step, never for an earlier one.
The colour scale is `sparse_rlvr.core.js_scale` (log10 JS from 1e-4, white, to ln 2, red), the one
report.html receives as data, so colours mean the same in W&B and in the report.
"""

from __future__ import annotations

import html
import json
import math
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from sparse_rlvr.core.js_scale import JS_CEILING, JS_FLOOR, js_color, js_intensity
from sparse_rlvr.training.monitor.samples import ShiftSample

__all__ = ["JS_CEILING", "JS_FLOOR", "TABLE_COLUMNS", "js_color", "js_histograms", "log_token_shift_media",
           "response_heatmap_html"]

LOG10_FLOOR = 1e-8
"""JS values below this count as 1e-8 in the log10 histogram."""
MAX_WANDB_BINS = 512
MAX_TOKENS = 2048
_MARKERS = {" ": "\u00b7", "\t": "\u2192", "\r": "\u240d", "\n": "\u21b5"}
_STYLE = (
    "<style>"
    ".srl-hm{font:13px/1.7 ui-monospace,SFMono-Regular,Menlo,monospace;color:#222;margin:4px}"
    ".srl-head{font-family:system-ui,sans-serif;font-size:12px;color:#555;margin-bottom:4px}"
    ".srl-toks{overflow-wrap:anywhere;border:1px solid #ddd;padding:6px}"
    ".srl-t{border-radius:2px;cursor:default}.srl-t:hover{outline:1px solid #333}"
    ".srl-ws{color:#aaa}"
    ".srl-scale{position:relative;width:320px;height:10px;border:1px solid #ccc;margin:4px 20px 16px}"
    ".srl-scale span{position:absolute;top:11px;font-size:10px;transform:translateX(-50%)}"
    "</style>"
)


def response_heatmap_html(sample: ShiftSample, vmax: float | None = None, max_tokens: int = MAX_TOKENS) -> str:
    """Self-contained HTML (inline CSS, no script, pure ASCII) of one response coloured by JS.

    Each token has a `title=` tooltip (works inside W&B's iframe, even when the cell is small):
    its text as a JSON string, id, JS, base and policy probabilities exp(ref_logprob) and
    exp(logprob), policy entropy, and w / advantage when present. Spaces, tabs and newlines
    show as faint markers (newlines also break the line); every token is HTML-escaped.
    `vmax` is the JS drawn at full colour (default ln 2); only the first `max_tokens` are drawn.
    """
    vmax = JS_CEILING if vmax is None else float(vmax)
    if not vmax > JS_FLOOR:
        raise ValueError(f"vmax (JS at full colour) must be above {JS_FLOOR:g}, got {vmax}")
    shown = min(len(sample.tokens), max_tokens)
    spans = [_token_span(sample, i, vmax) for i in range(shown)]
    hidden = len(sample.tokens) - shown
    more = f'<span class="srl-ws"> \u2026 {hidden} more tokens</span>' if hidden else ""
    head = (f"uid <b>{_escape(sample.uid)}</b> \u00b7 reward {sample.reward:.4g} \u00b7 mean JS {sample.mean_js:.3g}"
            f" \u00b7 max JS {sample.max_js:.3g} \u00b7 {len(sample.tokens)} tokens")
    page = (f'{_STYLE}<div class="srl-hm"><div class="srl-head">{head}</div>{_scale_html(vmax)}'
            f'<div class="srl-toks">{"<wbr>".join(spans)}{more}</div></div>')
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _token_span(sample: ShiftSample, i: int, vmax: float) -> str:
    """One token: coloured span, escaped visible text, escaped tooltip."""
    lines = [f"token {json.dumps(sample.tokens[i], ensure_ascii=False)}  id {sample.token_ids[i]}",
             f"JS {sample.js[i]:.3e}",
             f"p_base {_prob(sample.ref_logprobs[i])}  p_policy {_prob(sample.logprobs[i])}",
             f"entropy {sample.entropy[i]:.3g}"]
    if sample.weights is not None:
        lines.append(f"w {sample.weights[i]:.4g}")
    if sample.advantages is not None:
        lines.append(f"advantage {sample.advantages[i]:.4g}")
    title = _escape("\n".join(lines)).replace("\n", "&#10;")
    colour = js_color(sample.js[i], vmax)
    return f'<span class="srl-t" style="background:{colour}" title="{title}">{_visible(sample.tokens[i])}</span>'


def _prob(logprob: float) -> str:
    with np.errstate(over="ignore"):
        return f"{float(np.exp(np.float64(logprob))):.4g}"


def _visible(text: str) -> str:
    """Token text as HTML: escaped, whitespace and invisible control/format characters shown."""
    if not text:
        return '<span class="srl-ws">\u2205</span>'
    out = []
    for ch in text:
        if ch in _MARKERS:
            out.append(f'<span class="srl-ws">{_MARKERS[ch]}</span>' + ("<br>" if ch == "\n" else ""))
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f'<span class="srl-ws">\\u{ord(ch):04x}</span>')
        else:
            out.append(_escape(ch))
    return "".join(out)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _scale_html(vmax: float) -> str:
    """Colour bar with tick labels at the decades between 1e-4 and vmax."""
    stops = ",".join(js_color(10 ** (math.log10(JS_FLOOR) + f * (math.log10(vmax) - math.log10(JS_FLOOR))), vmax)
                     for f in np.linspace(0, 1, 9))
    ticks = [t for t in (1e-4, 1e-3, 1e-2, 1e-1) if t < vmax] + [vmax]
    labels = "".join(f'<span style="left:{100 * js_intensity(t, vmax):.1f}%">{t:.2g}</span>' for t in ticks)
    return f'<div class="srl-scale" title="JS(base, policy), log scale" style="background:linear-gradient(to right,{stops})">{labels}</div>'


def js_histograms(js_values: Any, bins: int = 64) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(counts, edges) of the response-token JS (0 .. step max) and of log10 JS; {} when no finite value."""
    if not 1 <= bins <= MAX_WANDB_BINS:
        raise ValueError(f"bins must be in [1, {MAX_WANDB_BINS}] (W&B's histogram limit), got {bins}")
    values = _as_numpy(js_values)
    values = np.clip(values[np.isfinite(values)], 0.0, None)
    if values.size == 0:
        return {}
    log10 = np.log10(np.clip(values, LOG10_FLOOR, JS_CEILING))
    return {
        "token_shift/js_histogram": np.histogram(values, bins=bins, range=(0.0, max(float(values.max()), 1e-12))),
        "token_shift/log10_js_histogram": np.histogram(log10, bins=bins,
                                                       range=(math.log10(LOG10_FLOOR), math.log10(JS_CEILING))),
    }


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor (any dtype/device)
        values = values.detach().double().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


TABLE_COLUMNS = ["step", "uid", "reward", "tokens", "mean_js", "max_js", "mean_weight", "heatmap", "prompt", "response"]


def log_token_shift_media(tracking: Any, step: int, js_values: Any, samples: Sequence[ShiftSample] | None = None,
                          bins: int = 64) -> list[str]:
    """Log the JS histograms (W&B, TensorBoard) and the heatmap table (W&B) at `step`.

    `tracking` is verl's `verl.utils.tracking.Tracking`; `js_values` the step's response-token
    JS (any shape, padding already removed); `samples` the responses to draw (see pick_samples).
    Returns the backends that received something; [] (a no-op) without wandb/tensorboard.
    """
    histograms = js_histograms(js_values, bins)
    loggers = getattr(tracking, "logger", {})
    done = []
    wandb = loggers.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        data: dict[str, Any] = {key: wandb.Histogram(np_histogram=h) for key, h in histograms.items()}
        if samples:
            data["token_shift/heatmaps"] = _wandb_table(wandb, step, samples)
        if data:
            wandb.run.log(data, step=step)
            done.append("wandb")
    board = loggers.get("tensorboard")
    if board is not None and histograms:
        for key, (counts, edges) in histograms.items():
            _add_tensorboard_histogram(board.writer, key, counts, edges, step)
        done.append("tensorboard")
    return done


def _wandb_table(wandb: Any, step: int, samples: Sequence[ShiftSample]) -> Any:
    """One row per sample; the heatmap cell is a wandb.Html taken verbatim (no injected stylesheet)."""
    table = wandb.Table(columns=TABLE_COLUMNS)
    for s in samples:
        mean_weight = float(np.mean(s.weights)) if s.weights else None
        heatmap = wandb.Html(response_heatmap_html(s), inject=False, data_is_not_path=True)
        table.add_data(step, s.uid, float(s.reward), len(s.tokens), s.mean_js, s.max_js, mean_weight, heatmap,
                       s.prompt, s.response)
    return table


def _add_tensorboard_histogram(writer: Any, tag: str, counts: np.ndarray, edges: np.ndarray, step: int) -> None:
    """The same (counts, edges) as W&B, via SummaryWriter.add_histogram_raw (sums from bin centres)."""
    centers = (edges[:-1] + edges[1:]) / 2
    writer.add_histogram_raw(tag, min=float(edges[0]), max=float(edges[-1]), num=int(counts.sum()),
                             sum=float((counts * centers).sum()), sum_squares=float((counts * centers**2).sum()),
                             bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=step)
