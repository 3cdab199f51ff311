"""OUT/report.html: the miniature's story on one self-contained page (inline PNG figures, a token heatmap).

Figures come from the numbers in results.json plus the shift stage's per-token table; the paper's
own figures (percentile curve, top-k overlap, rank histogram, evolution) are `sparse-rlvr shift`'s.
Model text only reaches the page through `analysis.report.heatmap_section` (JSON read as textContent).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sparse_rlvr.analysis import figures as shift_figures
from sparse_rlvr.analysis.report import HEATMAP_STYLE, figures_html, heatmap_section
from sparse_rlvr.core.figures import png_bytes

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.45}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0;max-width:100%}.figs img{max-width:100%;height:auto}figcaption{font-size:13px;color:#555;max-width:520px}
.note{background:#f6f6f6;border-left:4px solid #999;padding:6px 12px}
""" + HEATMAP_STYLE


def draw_accuracy(ax: Any, curve: Sequence[Sequence[float]]) -> None:
    """Sampled held-out accuracy (T = 1) at every validation step."""
    steps, accuracy = zip(*curve) if curve else ((), ())
    ax.plot(steps, accuracy, marker="o")
    ax.set(xlabel="GRPO step", ylabel="held-out accuracy (T = 1)", ylim=(0, 1.02), title="Accuracy during GRPO")
    ax.grid(alpha=0.3)


def draw_positions(ax: Any, by_kind: dict[str, list[float]], fork_positions: dict[str, list[int]]) -> None:
    """Mean JS by absolute response position per prompt kind, the planted fork positions dashed."""
    colours = {"fork_first": "crimson", "fork_later": "darkorange", "plain": "gray"}
    for kind, means in sorted(by_kind.items()):
        ax.semilogy(np.arange(len(means)), np.maximum(np.nan_to_num(means, nan=1e-9), 1e-9), marker=".",
                    color=colours.get(kind), label=f"{kind} prompts")
        for position in sorted(set(fork_positions.get(kind, []))):
            ax.axvline(position, color=colours.get(kind), ls="--", lw=1, alpha=0.6)
    ax.set(xlabel="token position in the response", ylabel="mean JS(base, RL)", title="JS by position; dashed: planted forks")
    ax.legend(fontsize=7)


def draw_cross_sampling(ax: Any, data: dict[str, Any], direction: str) -> None:
    """One direction: accuracy against the share of swapped tokens, with the random control and both models alone."""
    primary, intervening = ("base", "RL") if direction == "forward" else ("RL", "base")
    rows = data["settings"]
    ax.axhline(data["primary_only_accuracy"], color="gray", ls="--", lw=1, label=f"{primary} alone")
    ax.axhline(data["intervening_only_accuracy"], color="gray", ls=":", lw=1, label=f"{intervening} alone")
    x = [100 * r["swapped_frac"] for r in rows]
    ax.plot(x, [r["accuracy"] for r in rows], marker="o", label=f"{intervening} picks where JS > eps")
    ax.plot([100 * r["random_control_swapped_frac"] for r in rows], [r["random_control_accuracy"] for r in rows],
            marker="x", ls="none", color="black", label="as many random positions")
    for r, xi in zip(rows, x):
        ax.annotate(f"eps={r['eps']:g}", (xi, r["accuracy"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="tokens swapped (%)", ylabel="accuracy (sampled)", ylim=(0, 1.02),
           title=f"{direction}: {primary} decodes, {intervening} swaps in")
    ax.legend(fontsize=7, loc="lower right")


def accuracy_figure(curve: Sequence[Sequence[float]]) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    draw_accuracy(ax, curve)
    return png_bytes(fig)


def position_figure(deciles: Sequence[float], by_kind: dict[str, list[float]], fork_positions: dict[str, list[int]]) -> bytes:
    """Mean JS by relative-position decile (the paper's view) and by absolute position per prompt kind, forks marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.bar(np.arange(1, len(deciles) + 1), deciles, color="steelblue")
    left.set(xlabel="relative position in the response (decile)", ylabel="mean JS", title="JS by relative position")
    draw_positions(right, by_kind, fork_positions)
    return png_bytes(fig)


def cross_sampling_figure(cross: dict[str, dict[str, Any]]) -> bytes:
    """Accuracy against the share of swapped tokens, forward and reverse, each with its random control."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, direction in zip(axes, ("forward", "reverse")):
        draw_cross_sampling(ax, cross[direction], direction)
    return png_bytes(fig)


def overview_figure(results: dict[str, Any], cross: dict[str, dict[str, Any]], fork_positions: dict[str, list[int]]) -> bytes:
    """The story in four panels (README and the top of the report): learning, where JS sits, what the swaps do."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    draw_accuracy(axes[0], results["accuracy_curve"])
    draw_positions(axes[1], results["js_by_position_and_kind"], fork_positions)
    draw_cross_sampling(axes[2], cross["forward"], "forward")
    draw_cross_sampling(axes[3], cross["reverse"], "reverse")
    s = results["shift"]
    fig.suptitle(f"GRPO: accuracy {results['base_accuracy']:.2f} -> {results['rl_accuracy']:.2f};  "
                 f"{s['frac_js_below_1e-3']:.0%} of tokens have JS < 1e-3;  {s['planted_fork_recall_top5pct']:.0%} of the "
                 f"planted forks are in the top 5% by JS;  a few swaps there carry the whole gain", fontsize=11)
    return png_bytes(fig)


def ablation_figure(ablation: dict[str, dict[str, Any]], target: float) -> bytes:
    """Held-out accuracy over GRPO steps per weighting setting: mean over seeds, band = min..max."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, data in ablation.items():
        curves = [dict(map(tuple, c)) for c in data["curves"] if c]
        steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        if not steps:
            continue
        values = np.array([[c[s] for s in steps] for c in curves])
        ax.plot(steps, values.mean(0), marker=".", label=name)
        ax.fill_between(steps, values.min(0), values.max(0), alpha=0.15)
    ax.axhline(target, color="gray", ls=":", lw=1, label=f"target {target:g}")
    ax.set(xlabel="GRPO step", ylabel="held-out accuracy", title="Divergence weighting: learning curves (3 seeds)")
    ax.legend(fontsize=7)
    return png_bytes(fig)


def fork_positions_by_kind(samples: pd.DataFrame) -> dict[str, list[int]]:
    """The planted fork positions that occur, per prompt kind."""
    return {kind: sorted({p for forks in group["forks"] for p in forks}) for kind, group in samples.groupby("kind")}


def render(results: dict[str, Any], shift_summary: dict[str, Any], tokens: pd.DataFrame, samples: pd.DataFrame,
           decode: Any, story: dict[str, str]) -> str:
    """The page: headline numbers, figures with captions saying what to see, the heatmap, and what is built in."""
    s, cross = results["shift"], results["cross_sampling"]
    fork_positions = fork_positions_by_kind(samples)
    figures = {
        "The story in four panels (the same figure is OUT/overview.png).": overview_figure(results, cross, fork_positions),
        f"Held-out accuracy rises from {results['base_accuracy']:.2f} (base) to {results['rl_accuracy']:.2f} "
        f"after {results['steps']} GRPO steps.": accuracy_figure(results["accuracy_curve"]),
        f"{s['frac_js_below_1e-3']:.0%} of response tokens have JS < 1e-3: RL moved only a few decisions.":
            shift_figures.percentile_curve(shift_summary),
        f"The planted forks (dashed) carry the JS: {s['planted_fork_recall_top5pct']:.0%} of them are among the "
        f"top 5% of positions by JS, and they hold {s['js_share_at_forks']:.0%} of all JS.":
            position_figure(s["js_mean_by_position_decile"], results["js_by_position_and_kind"], fork_positions),
        "Accuracy against swapped tokens: a few swaps at high-JS positions carry the whole gain "
        "(forward) and remove it (reverse); as many random swaps do little.": cross_sampling_figure(cross),
    }
    if shift_summary["high_divergence"]["tokens"]:
        figures[f"At high-JS positions the RL model's top-1 lies within the base's top 3 in "
                f"{s['high_js_policy_top1_in_base_top3']:.0%} of cases: RL reorders existing candidates."] = \
            shift_figures.rank_histogram(shift_summary)
        figures["Top-k overlap of the two models' candidates at high-JS positions."] = \
            shift_figures.topk_overlap(shift_summary)
    if "evolution" in shift_summary:
        figures["JS percentiles over the GRPO checkpoints: the upper tail grows, the median stays near 0."] = \
            shift_figures.evolution_plot(shift_summary["evolution"])
    if results.get("ablation"):
        figures["Divergence weighting ablation (sparse-rlvr ablate): mean and min-max over seeds."] = \
            ablation_figure(results["ablation"], results["ablation_target"])
    heat_ids, labels = _heatmap_picks(tokens, samples)
    sections = "".join(f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>" for title, text in story.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sparse_rlvr: the paper in miniature</title>
<style>{_STYLE}</style></head><body>
<h1>RLVR's sparse, critical edits, in miniature</h1>
{_headline(results)}
<div class="figs">{figures_html(figures)}</div>
<h2>Token heatmap: RL-model responses, coloured by JS(base, RL)</h2>
<p>Hover a token for both models' top candidates. The red tokens are the decisions RL changed.</p>
{heatmap_section(tokens, decode, heat_ids, labels)}
{sections}
</body></html>"""


def _headline(results: dict[str, Any]) -> str:
    s = results["shift"]
    forward = results["cross_sampling"]["forward"]["settings"]
    reverse = results["cross_sampling"]["reverse"]["settings"]
    rows = [("accuracy: base -> RL", f"{results['base_accuracy']:.3f} -> {results['rl_accuracy']:.3f}"),
            ("GRPO steps", str(results["steps"])),
            ("tokens with JS < 1e-3", f"{s['frac_js_below_1e-3']:.1%}"),
            ("tokens with JS > 0.1", f"{s['frac_js_above_0.1']:.1%}"),
            ("planted forks in the top 5% by JS", f"{s['planted_fork_recall_top5pct']:.1%}")]
    rows += [(f"forward, eps = {r['eps']:g}: {r['swapped_frac']:.1%} swapped",
              f"{r['accuracy']:.3f} (random: {r['random_control_accuracy']:.3f})") for r in forward]
    rows += [(f"reverse, eps = {r['eps']:g}: {r['swapped_frac']:.1%} swapped",
              f"{r['accuracy']:.3f} (random: {r['random_control_accuracy']:.3f})") for r in reverse]
    rows.append(("wall time", f"{results['wall_s']:.0f} s"))
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _heatmap_picks(tokens: pd.DataFrame, samples: pd.DataFrame, per_kind: int = 2) -> tuple[list[int], list[str]]:
    """A few responses of each prompt kind from different prompts, those with the highest max JS first."""
    top = tokens.groupby("sample_id")["js"].max().rename("max_js").reset_index().merge(samples, on="sample_id")
    ids, labels = [], []
    for kind in ("fork_first", "fork_later", "plain"):
        ranked = top[top["kind"] == kind].sort_values("max_js", ascending=False).drop_duplicates("row")
        chosen = ranked.set_index("sample_id")["max_js"].head(per_kind)
        ids += [int(i) for i in chosen.index]
        labels += [f"{kind} prompt, response {int(i)} (max JS {v:.2f})" for i, v in chosen.items()]
    return ids, labels
