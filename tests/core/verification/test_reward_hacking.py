"""Reward hacking suite: wrong answers that share digits, prefixes or structure with the gold.

Precision comes first (issue 13): not one of these may be paid. A parse that covers only part
of an answer (``2`` out of ``2\\sqrt3``) is no answer, and sign, factor, exponent, factorial and
constant differences are always wrong.
"""

from __future__ import annotations

import pytest

from sparse_rlvr.core.verification.math import score_batch
from tests.core.verification.cases import HACKS


@pytest.fixture(scope="module")
def results() -> list[dict]:
    return score_batch([r for r, _ in HACKS], [g for _, g in HACKS])


def test_suite_is_large_and_distinct() -> None:
    assert len(HACKS) >= 80
    assert len(set(HACKS)) == len(HACKS)


@pytest.mark.parametrize("index", range(len(HACKS)), ids=lambda i: repr(HACKS[i])[:40])
def test_never_paid(results: list[dict], index: int) -> None:
    response, gold = HACKS[index]
    result = results[index]
    assert not result["acc"] and result["score"] < 0, (response, gold, result)
