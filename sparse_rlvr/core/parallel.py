"""Run shards of work in-process or over Ray actors (one per GPU when the cluster has GPUs).

Both paths call the same worker class, so results do not depend on where they were computed;
results come back to the driver, which writes them (no shared filesystem needed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def map_shards(worker_class: type, init_args: tuple, tasks: Iterable[Any], workers: int, method: str = "run_shard") -> Iterator[Any]:
    """Yield `worker_class(*init_args).<method>(task)` for every task, as each finishes.

    workers = 0: one worker in this process, tasks in order. workers = N: N Ray actors, each
    given its next task as soon as it returns one (Ray is started locally if it is not running).
    """
    tasks = list(tasks)
    if not tasks:
        return
    if workers == 0:
        worker = worker_class(*init_args)
        for task in tasks:
            yield getattr(worker, method)(task)
        return
    yield from _ray_map(worker_class, init_args, tasks, workers, method)


def _ray_map(worker_class: type, init_args: tuple, tasks: list[Any], workers: int, method: str) -> Iterator[Any]:
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(include_dashboard=False, log_to_driver=False)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= workers else 0
        actor_class = ray.remote(num_gpus=gpus, num_cpus=1)(worker_class)
        actors = [actor_class.remote(*init_args) for _ in range(min(workers, len(tasks)))]
        queue = list(tasks)
        running = {getattr(actor, method).remote(queue.pop(0)): actor for actor in actors}
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(done[0])
            if queue:
                running[getattr(actor, method).remote(queue.pop(0))] = actor
            yield ray.get(done[0])
        for actor in actors:
            ray.kill(actor)
    finally:
        if started_ray:
            ray.shutdown()
