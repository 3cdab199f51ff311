"""verl's ActorRolloutRef worker whose old-log-prob pass also runs the reference and the exact shift.

The trainer (`trainer.TokenShiftTrainer`) puts this class in place of verl's
`ActorRolloutRefWorker` when `sparse_rlvr.enable` is on, and marks its old-log-prob request with
SHIFT_REQUEST. Unmarked requests are verl's own. One more departure from verl: after
`init_model` the actor's and the reference's lm_heads return only the tokenizer's rows
(`real_vocab`), so their log-probs and entropy are over the distribution the rollout samples
from (verl's vLLM rollout masks padded rows; its FSDP actor does not). A run with the plugin
off is verl's run, padded rows included.
"""

from __future__ import annotations

import logging
from typing import Any

from tensordict import TensorDict
from verl.single_controller.base.decorator import Dispatch, make_nd_compute_dataproto_dispatch_fn, register
from verl.utils import tensordict_utils as tu
from verl.utils.profiler import DistProfiler
from verl.workers.engine_workers import ActorRolloutRefWorker

from sparse_rlvr.training.verl_glue.real_vocab import cut_padded_rows, lm_head_rows, tokenizer_vocab_size
from sparse_rlvr.training.verl_glue.single_pass import log_probs_and_shift

logger = logging.getLogger(__name__)

SHIFT_REQUEST = "sparse_rlvr_shift_chunk_tokens"
"""Non-tensor key of a compute_log_prob batch: do the single pass, in chunks of this many tokens (0: default)."""


class TokenShiftWorker(ActorRolloutRefWorker):
    """Computes old log-probs, entropy, reference log-probs and per-token JS/KLs in one pass."""

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def init_model(self):
        """verl's `init_model`, then the actor's and the reference's logits cut to the tokenizer's rows.

        With LoRA the reference is the actor without its adapter (`self.ref` is None): the
        actor's hook covers both.
        """
        super().init_model()
        for name, worker in (("actor", self.actor), ("ref", self.ref)):
            if worker is not None:
                cut_to_tokenizer(worker, name)

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


def cut_to_tokenizer(worker: Any, name: str) -> None:
    """Hook a verl `TrainingWorker`'s HF module so its logits cover only `len(tokenizer)` rows, as vLLM's under verl."""
    vocab_size = tokenizer_vocab_size(worker.model_config)
    if vocab_size is None:
        raise RuntimeError(
            f"sparse_rlvr: the {name} worker has no tokenizer, so its padded vocabulary rows cannot be cut to the "
            "rollout's: keep actor_rollout_ref.model.load_tokenizer=true (verl's vLLM rollout needs it as well)"
        )
    module = getattr(worker.engine, "module", None)
    if module is None:
        raise RuntimeError(f"sparse_rlvr: the {name} engine ({type(worker.engine).__name__}) has no HF module to hook; "
                           "the plugin runs on verl's FSDP engines (actor_rollout_ref.*.strategy=fsdp or fsdp2)")
    rows = lm_head_rows(module)
    if cut_padded_rows(module, vocab_size) is not None:
        logger.info("sparse_rlvr: %s logits cut from %d lm_head rows to the tokenizer's %d", name, rows, vocab_size)
