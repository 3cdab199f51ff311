"""The miniature's findings as numbers: what `shift`, `cross-sample` and verl wrote, scored against the planted forks.

Pure functions over the tools' outputs (per-token tables, results tables, verl's metric records), so
the report, results.json and the acceptance test read the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

ACCURACY_METRIC = "val-core/sparse_rlvr/miniature_mod10/acc/mean@{n}"
TOP_SHARE = 0.05
"""planted_fork_recall_top5pct: the forks among this share of response positions with the highest JS."""


def accuracy_curve(records: Sequence[dict[str, Any]], val_n: int) -> list[list[float]]:
    """[[step, held-out accuracy], ...] from verl's file-logger records (validation steps only)."""
    key = ACCURACY_METRIC.format(n=val_n)
    return [[int(r["step"]), float(r["data"][key])] for r in records if key in r["data"]]


def steps_to_target(curve: Sequence[Sequence[float]], target: float) -> int | None:
    """The first validated step whose accuracy reaches `target` (None if none does)."""
    return next((int(step) for step, acc in curve if acc >= target), None)


def sample_kinds(rows: Sequence[dict[str, Any]], generate: int) -> pd.DataFrame:
    """One row per sampled response of `shift --generate N`: sample_id = row * N + j, its data row, kind and forks."""
    records = []
    for i, row in enumerate(rows):
        info = row["extra_info"]
        for j in range(generate):
            records.append({"sample_id": i * generate + j, "row": i, "kind": info["kind"],
                            "forks": [int(p) for p in info["fork_positions"]]})
    return pd.DataFrame(records)


def fork_mask(tokens: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray:
    """True for each per-token row that sits at a planted fork position of its response."""
    forks = {(sid, pos) for sid, positions in zip(samples["sample_id"], samples["forks"]) for pos in positions}
    return np.fromiter(((s, p) in forks for s, p in zip(tokens["sample_id"], tokens["position"])), bool, len(tokens))


def planted_forks(tokens: pd.DataFrame, samples: pd.DataFrame, top_share: float = TOP_SHARE) -> dict[str, float]:
    """How well the highest-JS positions find the planted forks, and how much JS sits elsewhere.

    recall: the share of fork positions (present in the responses) among the `top_share` of all
    response positions with the highest JS (ties broken by order); js_share_at_forks: the forks'
    share of all JS; the mean JS at forks and elsewhere.
    """
    js = tokens["js"].to_numpy(dtype=np.float64)
    at_fork = fork_mask(tokens, samples)
    if not at_fork.any():
        raise ValueError("no planted fork position is among the analysed tokens; were the responses sampled "
                         "from the task's fork prompts (extra_info.fork_positions)?")
    top = np.zeros(len(js), dtype=bool)
    top[np.argsort(-js, kind="stable")[: max(1, math.ceil(top_share * len(js)))]] = True
    return {
        "planted_fork_recall_top5pct": float(top[at_fork].mean()),
        "fork_share_of_positions": float(at_fork.mean()),
        "js_share_at_forks": float(js[at_fork].sum() / js.sum()) if js.sum() > 0 else float("nan"),
        "js_mean_at_forks": float(js[at_fork].mean()),
        "js_mean_elsewhere": float(js[~at_fork].mean()),
    }


def js_by_position_and_kind(tokens: pd.DataFrame, samples: pd.DataFrame) -> dict[str, list[float]]:
    """Mean JS at each absolute response position, per prompt kind (fork_first, fork_later, plain)."""
    frame = tokens[["sample_id", "position", "js"]].merge(samples[["sample_id", "kind"]], on="sample_id")
    out = {}
    for kind, group in frame.groupby("kind"):
        means = group.groupby("position")["js"].mean()
        out[str(kind)] = [float(means.get(p, float("nan"))) for p in range(int(means.index.max()) + 1)]
    return out


def shift_findings(summary: dict[str, Any], planted: dict[str, float]) -> dict[str, Any]:
    """results.json's "shift" section from `sparse-rlvr shift`'s summary.json and the fork scores."""
    high = summary["high_divergence"]
    return {
        "frac_js_below_1e-3": summary["fraction_below"]["0.001"],
        "frac_js_above_0.1": summary["fraction_above_high"],
        "js_mean_by_position_decile": summary["by_position"]["bin_mean"],
        "high_js_policy_top1_in_base_top3": high.get("policy_top1_within_base_top3", float("nan")),
        "high_js_policy_top1_is_base_top1": high.get("policy_top1_within_base_top1", float("nan")),
        "high_js_tokens": high["tokens"],
        "tokens": summary["counts"]["tokens_analysed"],
        **planted,
    }


def cross_sampling_findings(table: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One direction of `cross-sample`'s results table: each eps with its random control, and both models alone."""
    by_setting = {row["setting"]: row for row in table}
    rows = []
    for row in table:
        if row["rule"] != "js-threshold" or row["setting"] == "intervening-only":
            continue
        control = by_setting.get(f"random@{row['setting']}")
        rows.append({
            "eps": float(row["value"]),
            "swapped_frac": row["effective_pct_tokens"] / 100,
            "accuracy": row["accuracy"] / 100,
            "random_control_accuracy": control["accuracy"] / 100 if control else float("nan"),
            "random_control_swapped_frac": control["effective_pct_tokens"] / 100 if control else float("nan"),
        })
    return {
        "settings": sorted(rows, key=lambda r: r["eps"]),
        "primary_only_accuracy": by_setting["primary-only"]["accuracy"] / 100,
        "intervening_only_accuracy": by_setting["intervening-only"]["accuracy"] / 100,
    }
