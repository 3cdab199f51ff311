"""The reward works from threads, asyncio, Ray workers and after pickling."""

from __future__ import annotations

import asyncio
import pickle
import threading

from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score
from sparse_rlvr.core.verification.pool import VerifierPool

RESPONSE, GOLD = "\\boxed{\\frac{2}{4}}", "0.5"  # not string-equal: goes through a worker


def test_from_threads() -> None:
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(compute_score("m", RESPONSE, GOLD))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r["reason"] for r in results] == ["correct"] * 6


def test_from_asyncio() -> None:
    async def main() -> list[dict]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(None, compute_score, "m", RESPONSE, GOLD) for _ in range(4)))

    assert [r["acc"] for r in asyncio.run(main())] == [True] * 4


def test_after_pickling() -> None:
    fn = pickle.loads(pickle.dumps(compute_score))
    config = pickle.loads(pickle.dumps(MathRewardConfig(correct_score=2.0)))
    assert fn("m", RESPONSE, GOLD, config=config)["score"] == 2.0
    pool = pickle.loads(pickle.dumps(VerifierPool(1)))
    try:
        assert pool.run((GOLD, "\\frac{1}{2}", 0.0, None), 5.0) == ("ok", True)
    finally:
        pool.close()


def test_from_ray_worker(local_ray) -> None:
    @local_ray.remote
    def grade(response: str, gold: str) -> dict:
        from sparse_rlvr.core.verification.math import compute_score

        return compute_score("m", response, gold, deadline_s=3.0)

    refs = [grade.remote(RESPONSE, GOLD), grade.remote("\\boxed{2^{2^{2^{2^{2^{2^{2^{2}}}}}}}}", "1")]
    correct, tower = local_ray.get(refs, timeout=120)
    assert correct["reason"] == "correct"
    assert tower["reason"] == "timeout"
