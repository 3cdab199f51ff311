"""The paper's token-shift statistics (sections 1 and 3) from per-token results.

Percentiles, relative-position deciles and base-entropy bins come from
`sparse_rlvr.core.shift_stats`, the same functions the W&B monitor uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparse_rlvr.core.shift_stats import PERCENTILES, js_by_entropy, js_by_position, js_percentiles


def summarize(tokens: pd.DataFrame, cutoffs: list[float], high: float, counts: dict[str, int]) -> dict:
    """Every statistic of `sparse-rlvr shift` as a JSON-ready dict.

    `tokens` needs the columns written by the analysis (js, position, response_length,
    base_entropy, topk_overlap, policy_top1_rank_in_base, base_prob_of_policy_top1, top1_agree, token).
    """
    js = tokens["js"].to_numpy(dtype=np.float64)
    if len(js) == 0:
        raise ValueError("no response tokens were analysed (every response empty or skipped); check the data")
    is_high = js > high
    return {
        "counts": counts | {"tokens_analysed": int(len(js))},
        "js": {
            "mean": float(js.mean()),
            "max": float(js.max()),
            "percentiles": js_percentiles(js, PERCENTILES),
            "curve": list(js_percentiles(js, tuple(range(101))).values()),
        },
        "fraction_below": {str(c): float((js < c).mean()) for c in cutoffs},
        "fraction_above_high": float(is_high.mean()),
        "high_cutoff": high,
        "by_position": js_by_position(js, tokens["position"].to_numpy(), tokens["response_length"].to_numpy()),
        "by_base_entropy": js_by_entropy(js, tokens["base_entropy"].to_numpy(), high),
        "high_divergence": _high_divergence(tokens[is_high]),
        "top1_agreement": float(tokens["top1_agree"].mean()),
        "top_tokens": _top_tokens(tokens, is_high),
    }


def _high_divergence(high: pd.DataFrame) -> dict:
    """Section 3: candidate overlap, rank reordering and base probability at high-JS positions."""
    if high.empty:
        return {"tokens": 0}
    ranks = high["policy_top1_rank_in_base"].to_numpy()
    overlap = np.stack(high["topk_overlap"].to_numpy())
    return {
        "tokens": int(len(high)),
        "topk_overlap_mean": [float(v) for v in overlap.mean(0)],
        "policy_top1_within_base_top1": float((ranks <= 1).mean()),
        "policy_top1_within_base_top3": float((ranks <= 3).mean()),
        "policy_top1_within_base_top10": float((ranks <= 10).mean()),
        "rank_histogram": {str(r): int((ranks == r).sum()) for r in range(1, 11)} | {">10": int((ranks > 10).sum())},
        "fraction_base_prob_below_0.01": float((high["base_prob_of_policy_top1"].to_numpy() < 0.01).mean()),
    }


def _top_tokens(tokens: pd.DataFrame, is_high: np.ndarray, limit: int = 20) -> list[dict]:
    """Tokens most often high-divergence, with how often they occur at all (context matters)."""
    frame = pd.DataFrame({"token": tokens["token"].to_numpy(), "high": is_high})
    grouped = frame.groupby("token")["high"].agg(["sum", "count"]).sort_values("sum", ascending=False)
    grouped = grouped[grouped["sum"] > 0].head(limit)
    return [
        {"token": token, "high_count": int(row["sum"]), "total_count": int(row["count"]),
         "fraction_high": float(row["sum"] / row["count"])}
        for token, row in grouped.iterrows()
    ]


def evolution(summaries: dict[str, dict]) -> dict:
    """JS percentiles per policy checkpoint, in the order given (training steps)."""
    return {
        "checkpoints": list(summaries),
        "percentiles": {p: [s["js"]["percentiles"][p] for s in summaries.values()] for p in map(str, PERCENTILES)},
        "mean": [s["js"]["mean"] for s in summaries.values()],
        "fraction_above_high": [s["fraction_above_high"] for s in summaries.values()],
    }
