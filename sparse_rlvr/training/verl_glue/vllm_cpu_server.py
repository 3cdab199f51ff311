"""verl's vLLM replica for the CPU lane, with each request's sampling seeded by what it is.

The only change to verl's ``vLLMHttpServer``: a request without a seed gets one from
``RequestSeeds`` (run seed, weight version = verl's global step, prompt, k-th request), so
vLLM samples it with its own generator whatever the batch it lands in. Without it vLLM draws
from one generator in batch order, and two runs of the same recipe sample differently. The
launcher registers this replica under ``vllm`` for CPU runs only (``registered_backends``).
"""

from __future__ import annotations

from typing import Any

import ray
from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMHttpServer, vLLMReplica

from sparse_rlvr.training.verl_glue.request_seeds import RequestSeeds


class SeededvLLMHttpServer(vLLMHttpServer):
    """verl's vLLM server; requests without a seed are seeded by (seed, global step, prompt, k)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_seeds = RequestSeeds(int(getattr(self.config, "seed", 0) or 0) + self.replica_rank)

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       *args: Any, **kwargs: Any):
        if sampling_params.get("seed") is None:
            seed = self.request_seeds.next(self.global_steps, prompt_ids)
            sampling_params = {**sampling_params, "seed": seed}
        return await super().generate(prompt_ids, sampling_params, request_id, *args, **kwargs)


class SeededvLLMReplica(vLLMReplica):
    """verl's vLLM replica, serving through ``SeededvLLMHttpServer``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_class = ray.remote(SeededvLLMHttpServer)
