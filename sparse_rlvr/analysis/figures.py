"""The paper's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from sparse_rlvr.core.figures import png_bytes as _png


def percentile_curve(summary: dict) -> bytes:
    """JS at every percentile (log scale): how few tokens carry the shift."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    curve = np.maximum(np.array(summary["js"]["curve"]), 1e-12)
    ax.semilogy(np.arange(101), curve)
    ax.axhline(summary["high_cutoff"], color="crimson", ls="--", lw=1, label=f"high (JS > {summary['high_cutoff']})")
    ax.set(xlabel="percentile of tokens", ylabel="JS(base, policy)", title="JS percentile curve")
    ax.legend(fontsize=8)
    return _png(fig)


def position_profile(summary: dict) -> bytes:
    """Mean and p90 JS by relative position in the response."""
    by_position = summary["by_position"]
    centers = (np.arange(len(by_position["bin_mean"])) + 0.5) / len(by_position["bin_mean"])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, label in (("bin_mean", "mean"), ("bin_p90", "p90")):
        values = [np.nan if v is None else v for v in by_position[key]]
        ax.plot(centers, values, marker="o", label=label)
    ax.set(xlabel="relative position in response", ylabel="JS", title="Where in the response JS is high")
    ax.legend(fontsize=8)
    return _png(fig)


def entropy_vs_js(summary: dict) -> bytes:
    """Mean JS and share of high-JS tokens per base-entropy bucket."""
    rows = summary["by_base_entropy"]
    labels = [f"{r['entropy_from']:g}-{r['entropy_to']:g}" for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(labels, [r["js_mean"] or 0 for r in rows], color="steelblue")
    ax.set(xlabel="base entropy (nats)", ylabel="mean JS", title="JS against base entropy")
    twin = ax.twinx()
    twin.plot(labels, [r["tokens"] for r in rows], color="gray", marker=".", label="tokens")
    twin.set_ylabel("tokens")
    return _png(fig)


def topk_overlap(summary: dict) -> bytes:
    """Top-k candidate overlap of base and policy at high-JS positions."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    overlap = summary["high_divergence"].get("topk_overlap_mean", [])
    ax.plot(np.arange(1, len(overlap) + 1), overlap, marker="o")
    ax.set(xlabel="k", ylabel="|top-k(base) ∩ top-k(policy)| / k", ylim=(0, 1.05),
           title=f"Candidate overlap at JS > {summary['high_cutoff']}")
    return _png(fig)


def rank_histogram(summary: dict) -> bytes:
    """Rank of the policy's top-1 token under the base, at high-JS positions."""
    histogram = summary["high_divergence"].get("rank_histogram", {})
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(list(histogram), list(histogram.values()), color="darkorange")
    ax.set(xlabel="rank under the base", ylabel="high-JS tokens", title="Policy top-1: its base rank")
    return _png(fig)


def evolution_plot(evolution: dict) -> bytes:
    """JS percentiles per checkpoint: upper percentiles grow faster over training."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    steps = np.arange(len(evolution["checkpoints"]))
    for p in ("50", "90", "95", "99"):
        ax.semilogy(steps, np.maximum(evolution["percentiles"][p], 1e-12), marker="o", label=f"p{p}")
    ax.set_xticks(steps, [c.rstrip("/").split("/")[-1][:18] for c in evolution["checkpoints"]], rotation=30, fontsize=7)
    ax.set(ylabel="JS", title="JS percentiles over checkpoints")
    ax.legend(fontsize=8)
    return _png(fig)


def all_figures(summary: dict) -> dict[str, bytes]:
    """Title -> PNG for every figure the summary supports."""
    figures = {
        "JS percentile curve": percentile_curve(summary),
        "Position profile": position_profile(summary),
        "Entropy vs JS": entropy_vs_js(summary),
    }
    if summary["high_divergence"]["tokens"]:
        figures["Top-k overlap at high JS"] = topk_overlap(summary)
        figures["Rank of the policy's top-1 under the base"] = rank_histogram(summary)
    if "evolution" in summary:
        figures["Evolution over checkpoints"] = evolution_plot(summary["evolution"])
    return figures
