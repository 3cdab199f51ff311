"""The labelled suite (tests/core/verification/cases.py) graded in one batch; every reason must match.

Known misses are listed in KNOWN_MISSES with the reason we give, so a fix shows up as a pass.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sparse_rlvr.core.verification.math import score_batch
from tests.core.verification.cases import CASES

KNOWN_MISSES = {("\\boxed{e^{i\\pi}}", "-1")}  # math-verify does not evaluate Euler's identity


@pytest.fixture(scope="module")
def results() -> list[dict]:
    return score_batch([c[1] for c in CASES], [c[2] for c in CASES])


def test_suite_covers_every_category() -> None:
    counts = Counter(c[0] for c in CASES)
    assert len(CASES) >= 150
    issue_13 = ("shorthand", "thousands", "sets_pm", "empty_set", "choices_text", "answer_is_choice", "answer_line_unit",
                "multi_box", "gold_boxes", "gold_solution", "final_answer")
    for category in ("equal_forms", "expressions", "intervals_sets", "units", "negatives", "choices", "truncated", "no_answer", "last_answer"):
        assert counts[category] >= 5, category
    for category in issue_13:
        assert counts[category] >= 3, category


@pytest.mark.parametrize("index", range(len(CASES)))
def test_case(results: list[dict], index: int) -> None:
    category, response, gold, expected = CASES[index]
    result = results[index]
    assert set(result) >= {"score", "acc", "pred", "reason"}
    if any(r in response and gold == g for r, g in KNOWN_MISSES):
        pytest.xfail("known recall miss")
    assert result["reason"] == expected, (category, response, gold, result)
    assert result["acc"] == (expected == "correct")
    assert result["score"] == (1.0 if expected == "correct" else -1.0)
