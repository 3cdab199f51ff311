"""The reward works from threads, asyncio, Ray workers and after pickling."""

from __future__ import annotations

import asyncio
import pickle
import threading

from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score, score_batch
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


def test_batch_sends_identical_checks_once(monkeypatch) -> None:
    from sparse_rlvr.core.verification.pool import shared_pool

    config = MathRewardConfig()
    pool = shared_pool(config.num_workers)
    sent: list[tuple] = []
    real_map = pool.map
    monkeypatch.setattr(pool, "map", lambda tasks, deadline: sent.extend(tasks) or real_map(tasks, deadline))
    responses = [RESPONSE, "\\boxed{\\frac{3}{4}}", RESPONSE, "So \\boxed{\\frac{2}{4}}.", "\\boxed{\\frac{3}{4}}"]
    results = score_batch(responses, [GOLD] * 5, config=config)
    assert [r["reason"] for r in results] == ["correct", "wrong", "correct", "correct", "wrong"]
    assert len(sent) == 2  # (0.5, 2/4) and (0.5, 3/4), each once
