"""verl's ActorRolloutRef worker whose old-log-prob pass also runs the reference and the exact shift.

The trainer (`trainer.TokenShiftTrainer`) puts this class in place of verl's
`ActorRolloutRefWorker` when `sparse_rlvr.enable` is on, and marks its old-log-prob request with
SHIFT_REQUEST. Unmarked requests (and every other method) are verl's own, so a run with the
plugin off is verl's run.
"""

from __future__ import annotations

from typing import Any

from tensordict import TensorDict
from verl.single_controller.base.decorator import make_nd_compute_dataproto_dispatch_fn, register
from verl.utils import tensordict_utils as tu
from verl.utils.profiler import DistProfiler
from verl.workers.engine_workers import ActorRolloutRefWorker

from sparse_rlvr.training.verl_glue.single_pass import log_probs_and_shift

SHIFT_REQUEST = "sparse_rlvr_shift_chunk_tokens"
"""Non-tensor key of a compute_log_prob batch: do the single pass, in chunks of this many tokens (0: default)."""


class TokenShiftWorker(ActorRolloutRefWorker):
    """Computes old log-probs, entropy, reference log-probs and per-token JS/KLs in one pass."""

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    @DistProfiler.annotate(color="blue", role="actor_compute_log_prob")
    def compute_log_prob(self, data: TensorDict) -> TensorDict:
        request = tu.pop(data, key=SHIFT_REQUEST, default=None)
        if request is None:
            output = self.actor.infer_batch(data)
            return output.cpu() if output is not None else None
        if self.ref is None and not reference_is_adapterless_actor(self.config.model):
            raise RuntimeError(
                "sparse_rlvr's single pass needs the reference model in the actor worker, and this worker has "
                "none: launch through `python -m sparse_rlvr.train`, whose trainer makes the worker "
                "actor+rollout+ref (or use LoRA, where the reference is the actor without its adapter)"
            )
        return log_probs_and_shift(self.actor, self.ref, data, int(request) or None)


def reference_is_adapterless_actor(model_config: Any) -> bool:
    """verl's rule (its trainers' `ref_in_actor`): with a LoRA adapter the reference is the actor without it."""
    rank = (model_config.get("lora", {}) or {}).get("rank", 0) or model_config.get("lora_rank", 0)
    return rank > 0 or model_config.get("lora_adapter_path") is not None
