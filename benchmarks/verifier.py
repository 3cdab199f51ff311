"""Benchmark the math verifier against verl's two graders on the labelled suite, in one run.

    .venv/bin/python benchmarks/verifier.py

1. Quality on tests/core/verification/cases.py: accuracy (verdict == label), precision and recall of
   "correct" (a grader says correct when its score > 0), for ours, verl's math-verify wrapper
   (`verl.utils.reward_score.math_verify.compute_score`) and `math_dapo.compute_score`.
2. Speed: answers/s on the first pass over the suite (cold parse caches, pools already
   started) and over the suite repeated REPEAT times (warm caches: both sides cache parses); ours via the batch
   API, verl's as they are called (one answer per call; the math-verify wrapper also with 2
   threads calling it, its best case on 2 cores). Targets: ours >= 2x the math-verify wrapper.
3. Hostile suite (tests/core/verification/test_hostile.py): max wall time per case vs deadline + 1 s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPEAT = 4


def quality(verdicts: list[bool], labels: list[bool]) -> tuple[float, float, float]:
    """(accuracy, precision, recall) of boolean verdicts against labels."""
    tp = sum(v and l for v, l in zip(verdicts, labels))
    fp = sum(v and not l for v, l in zip(verdicts, labels))
    fn = sum(l and not v for v, l in zip(verdicts, labels))
    acc = sum(v == l for v, l in zip(verdicts, labels)) / len(labels)
    return acc, tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def timed(fn: Callable[[], list[bool]]) -> tuple[list[bool], float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    from verl.utils.reward_score import math_dapo, math_verify

    from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score, score_batch
    from tests.core.verification.cases import CASES
    from tests.core.verification.test_hostile import HANGS, INJECTIONS, MALFORMED

    responses, golds = [c[1] for c in CASES], [c[2] for c in CASES]
    labels = [c[3] == "correct" for c in CASES]
    config = MathRewardConfig(num_workers=2)
    graders: dict[str, Callable[[list[str], list[str]], list[bool]]] = {
        "sparse_rlvr (batch, 2 workers)": lambda rs, gs: [r["score"] > 0 for r in score_batch(rs, gs, config=config)],
        "verl math_verify": lambda rs, gs: [math_verify.compute_score(r, g) > 0 for r, g in zip(rs, gs)],
        "verl math_verify (2 threads)": lambda rs, gs: list(
            ThreadPoolExecutor(2).map(lambda rg: math_verify.compute_score(*rg) > 0, zip(rs, gs))
        ),
        "verl math_dapo": lambda rs, gs: [math_dapo.compute_score(r, g)["score"] > 0 for r, g in zip(rs, gs)],
    }
    rows = []
    for name, grade in graders.items():
        grade(["\\boxed{\\frac{2}{4}}"] * 4, ["0.5"] * 4)  # start pools; caches stay cold for the suite
        verdicts, cold = timed(lambda: grade(responses, golds))
        _, seconds = timed(lambda: grade(responses * REPEAT, golds * REPEAT))
        rows.append((name, *quality(verdicts, labels), len(responses) / cold, len(responses) * REPEAT / seconds))
    print(f"labelled suite: {len(CASES)} cases ({sum(labels)} correct); speed over {len(CASES) * REPEAT} answers")
    print(f"{'grader':34s} {'accuracy':>9s} {'precision':>9s} {'recall':>7s} {'cold ans/s':>11s} {'warm ans/s':>11s}")
    for name, acc, prec, rec, cold, warm in rows:
        print(f"{name:34s} {acc:9.4f} {prec:9.4f} {rec:7.4f} {cold:11.1f} {warm:11.1f}")
    for col, label in ((4, "cold (first pass, parse caches empty)"), (5, f"warm (suite x{REPEAT})")):
        ratio, ratio2 = rows[0][col] / rows[1][col], rows[0][col] / rows[2][col]
        print(f"throughput ratio ours / verl math_verify, {label}: {ratio:.2f}x (vs its 2-thread use: {ratio2:.2f}x)")

    deadline = 2.0
    hostile = MathRewardConfig(deadline_s=deadline)
    worst = 0.0
    for response in HANGS + INJECTIONS + MALFORMED:
        start = time.monotonic()
        compute_score("math", response, "1", config=hostile)  # type: ignore[arg-type]
        worst = max(worst, time.monotonic() - start)
    n = len(HANGS + INJECTIONS + MALFORMED)
    print(f"hostile suite: {n} cases, max {worst:.2f} s per case vs deadline {deadline:.1f} s + 1 s")


if __name__ == "__main__":
    main()
