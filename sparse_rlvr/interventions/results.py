"""The paper's cross-sampling table: effective budget and accuracy mean@k with a confidence interval."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def results_table(config: Any, settings: list[Any], records: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per setting: direction, rule, value, effective % and # of swapped tokens, accuracy.

    Accuracy is mean@k: per prompt the mean over its k samples, then the mean over prompts; the
    95% interval is the normal approximation over prompts (1.96 x sd / sqrt(prompts)).
    """
    rows = []
    for setting in settings:
        responses = records[setting.name]
        if not responses:
            continue
        per_prompt: dict[int, list[float]] = {}
        for r in responses:
            per_prompt.setdefault(r["prompt_index"], []).append(float(r["acc"]))
        accuracy = np.array([np.mean(v) for v in per_prompt.values()])
        half_width = 1.96 * accuracy.std(ddof=1) / math.sqrt(len(accuracy)) if len(accuracy) > 1 else float("nan")
        rows.append({
            "direction": config.direction, "setting": setting.name, "rule": setting.rule, "value": setting.value,
            "matched": setting.matched,
            "effective_pct_tokens": 100 * float(np.mean([r["frac_swapped"] for r in responses])),
            "effective_n_tokens": float(np.mean([r["n_swapped"] for r in responses])),
            "mean_response_tokens": float(np.mean([r["n_tokens"] for r in responses])),
            "accuracy": 100 * float(accuracy.mean()), "ci95": 100 * half_width,
            "prompts": len(accuracy), "responses": len(responses),
        })
    return rows
