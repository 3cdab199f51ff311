"""Hostile inputs: bounded time, a reason instead of an exception, and no side effects."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score, score_batch

DEADLINE = 2.0
CONFIG = MathRewardConfig(deadline_s=DEADLINE)
MARKER = Path("/tmp/sparse_rlvr_pwned")

HANGS = [
    "\\boxed{2^{2^{2^{2^{2^{2^{2^{2^{2}}}}}}}}}",
    "\\boxed{9^{9^{9^{9^{9}}}}}",
    "\\boxed{(10^{10^{10}})!}",
    "\\boxed{" + "{" * 300 + "1" + "}" * 300 + "}",
    "\\boxed{" + "\\sqrt{" * 200 + "2" + "}" * 200 + "}",
    "\\boxed{" + "+".join(["x^{%d}" % i for i in range(400)]) + "}",
]
INJECTIONS = [
    "\\boxed{__import__('os').system('touch /tmp/sparse_rlvr_pwned')}",
    "Answer: __import__('os').system('touch /tmp/sparse_rlvr_pwned')",
    "\\boxed{exec(\"open('/tmp/sparse_rlvr_pwned','w')\")}",
    "\\boxed{eval('open(\"/tmp/sparse_rlvr_pwned\",\"w\")')}",
    "Answer: $(lambda: open('/tmp/sparse_rlvr_pwned','w'))()$",
    "\\boxed{\\input{/etc/passwd}}",
]
MALFORMED: list[object] = ["", None, 12, b"\\boxed{1}", ["\\boxed{1}"], "\x00\\boxed{1\x00}", "\\boxed{{{", "}}}\\boxed{1}}}", "\\boxed{\\frac{}{}}", "\\boxed{" + "1" * 100_000 + "}", "a" * 1_000_000,
                      "\\boxed{" * 50_000, "\\boxed{1}, " * 20_000]  # many boxes: extraction stays one pass


@pytest.fixture(scope="module", autouse=True)
def started_pool() -> None:
    """Start the workers first: the deadline bounds checking an answer, not the pool's one-time start."""
    assert compute_score("math", "\\boxed{\\frac{2}{4}}", "0.5", config=CONFIG)["reason"] == "correct"


@pytest.mark.parametrize("response", HANGS + INJECTIONS + MALFORMED, ids=lambda r: repr(r)[:30])
def test_bounded_and_reasoned(response: object) -> None:
    start = time.monotonic()
    result = compute_score("math", response, "1", config=CONFIG)  # type: ignore[arg-type]
    elapsed = time.monotonic() - start
    assert elapsed <= DEADLINE + 1.0, elapsed
    assert result["reason"] in {"correct", "wrong", "no_answer", "truncated", "timeout", "error"}
    assert not MARKER.exists()


def test_power_tower_times_out_and_pool_recovers() -> None:
    tower = compute_score("math", HANGS[0], "3", config=CONFIG)
    assert tower["reason"] == "timeout" and tower["score"] == -1.0
    assert compute_score("math", "\\boxed{\\frac{2}{4}}", "0.5", config=CONFIG)["reason"] == "correct"


def test_batch_of_hangs_is_bounded() -> None:
    start = time.monotonic()
    results = score_batch(HANGS[:2] * 2 + ["\\boxed{\\frac{1}{2}}"], ["1"] * 4 + ["0.5"], config=CONFIG)
    assert time.monotonic() - start <= 2 * DEADLINE + 3.0  # 4 hangs over 2 workers, plus restarts
    assert results[-1]["reason"] == "correct"
    assert {r["reason"] for r in results[:4]} <= {"timeout", "wrong", "error"}


def test_bad_gold_is_error_not_exception() -> None:
    for gold in (None, "", object(), "\\boxed{"):
        assert compute_score("math", "\\boxed{1}", gold)["reason"] in {"error", "wrong"}  # type: ignore[arg-type]


def test_no_file_created_anywhere_in_cwd(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        compute_score("math", "\\boxed{open('x.txt','w')}", "1", config=CONFIG)
    finally:
        os.chdir(cwd)
    assert list(tmp_path.iterdir()) == []
