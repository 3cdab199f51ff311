"""verl's vLLM worker extension, with a weight sync that works on vLLM's CPU backend.

vLLM imports this module inside its Worker process (``worker_extension_cls``), so it may import
vLLM and verl's vLLM rollout freely; the launcher only needs the class's dotted name, which lives in
``vllm_cpu_lane`` so that the driver never imports vLLM.
"""

from __future__ import annotations

from typing import Any

import torch
from verl.utils.vllm.vllm_quant_utils import is_quantized_model
from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver
from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension
from verl.workers.rollout.vllm_rollout.weight_update_utils import split_buffer_updates


class CPUColocateWorkerExtension(vLLMColocateWorkerExtension):
    """Reloads the weights layer by layer from copies of the received tensors; verl's in-place load fails on CPU.

    On CPU, vLLM packs every linear weight for its GEMM kernels and leaves an empty Parameter
    behind, so verl's ``model.load_weights`` has nothing to write into. vLLM's layer-wise reload
    rebuilds each layer, loads it and packs it again. Received tensors are views into the
    shared-memory bucket that the next bucket overwrites (``.to("cpu")`` is a no-op), so each
    is cloned. A tied ``lm_head`` receives no tensor of its own, so its packed copy is rebuilt.
    """

    def update_weights_from_ipc(self, peft_config: dict | None = None, base_sync_done: bool = False,
                                use_shm: bool = False) -> None:
        if peft_config or self._is_qat_model or self._is_modelopt_qat or is_quantized_model(self.model_runner.vllm_config):
            raise NotImplementedError(
                "sparse_rlvr's CPU weight sync loads full unquantized weights: LoRA, FP8 and QAT rollouts run on GPU only"
            )
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload

        if self.device is None:
            self.device = torch.device("cpu")
        model = self.model_runner.model
        initialize_layerwise_reload(model)

        def on_bucket(weights: list[tuple[str, torch.Tensor]], is_last: bool) -> None:
            params, buffers, named_buffers = split_buffer_updates(model, weights)
            if params:
                model.load_weights([(name, tensor.clone()) for name, tensor in params])
            if buffers:
                self._apply_buffer_updates_all_models([(name, tensor.clone()) for name, tensor in buffers], named_buffers)

        try:
            receiver = BucketedWeightReceiver(zmq_handle=self._get_zmq_handle(), device=self.device, use_shm=use_shm)
            receiver.receive_weights(on_bucket_received=on_bucket)
        finally:
            finalize_layerwise_reload(model, self.model_runner.vllm_config.model_config)
        repack_tied_head(model)


def repack_tied_head(model: Any) -> None:
    """Re-run the CPU packing of a tied ``lm_head``: a reload gives it no weight of its own, so its packed copy goes stale."""
    head = getattr(model, "lm_head", None)
    if getattr(model.config, "tie_word_embeddings", False) and head is not None and hasattr(head, "quant_method"):
        head.quant_method.process_weights_after_loading(head)
