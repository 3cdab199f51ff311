"""One pass over each micro-batch through the policy and the reference: log-probs, entropy and exact shift.

This replaces verl's two forward-only passes (actor old-log-prob, reference log-prob) when the
plugin is on. Per micro-batch it runs verl's own engine steps (`prepare_model_inputs`, the FSDP
module, `prepare_model_outputs`) for both models on the same inputs, so `log_probs`, `entropy`
and `ref_log_probs` are what verl's passes would give, and in between it compares the two full
next-token distributions with the divergence core, in token chunks. Only per-token [tokens]
values leave this function (nested like verl's log-probs); the [tokens, V] logits never do.

The shift compares distributions over the tokenizer's vocabulary only (the first `len(tokenizer)`
logits): `TokenShiftWorker` already cuts both models' lm_heads to it (`real_vocab`), and the
comparison cuts again, so padded rows can never enter JS, the KLs or the top-1 fields.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, nullcontext
from typing import Any

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.utils.tensordict_utils import maybe_fix_3d_position_ids
from verl.utils.device import get_device_id, get_device_name
from verl.workers.engine.utils import postprocess_batch_func, prepare_micro_batches

from sparse_rlvr.core.divergence import token_divergence
from sparse_rlvr.training.verl_glue.real_vocab import tokenizer_vocab_size
from sparse_rlvr.training.verl_glue.verl_internals import autocast_dtype, gather_and_unpad_packed

logger = logging.getLogger(__name__)

SHIFT_FIELDS = {
    "token_shift_js": "js",
    "token_shift_kl_policy_base": "kl_policy_base",
    "token_shift_kl_base_policy": "kl_base_policy",
    "token_shift_base_entropy": "base_entropy",
    "token_shift_top1_agree": "top1_agree",
    "token_shift_policy_top1_rank": "policy_top1_rank_in_base",
}
"""Output key -> TokenDivergence field, per token (float32; the bool/int fields as 0/1 and ranks)."""
REF_LOG_PROBS = "ref_log_probs"
GPU_BUFFER_BYTES = 64 << 20
"""Default size of one [chunk, V] float32 work buffer on GPUs (7 of them: ~450 MB), small beside a
training step's activations; CPUs use the core's own cache-sized default."""


def infer_defaults(worker: Any) -> dict[str, Any]:
    """The micro-batching keys verl's `TrainingWorker.infer_batch` fills in when the batch lacks them."""
    engine_config = worker.engine_config
    return dict(
        use_remove_padding=worker.model_config.get("use_remove_padding", False),
        use_dynamic_bsz=engine_config.use_dynamic_bsz,
        max_token_len_per_gpu=engine_config.infer_max_token_len_per_gpu,
        micro_batch_size_per_gpu=engine_config.infer_micro_batch_size_per_gpu,
        use_fused_kernels=engine_config.use_fused_kernels,
    )


def log_probs_and_shift(actor: Any, reference: Any | None, data: TensorDict, chunk_tokens: int | None) -> TensorDict | None:
    """verl's old-log-prob outputs plus `ref_log_probs` and the token_shift_* fields, in one pass.

    Args:
        actor: the policy's verl `TrainingWorker` (its `.engine` is an FSDP engine with LM head).
        reference: the reference `TrainingWorker`, or None when the reference is the actor with
            its LoRA adapter disabled.
        data: the batch as verl's `compute_log_prob` receives it.
        chunk_tokens: rows per chunk of the divergence computation (bounds its extra memory);
            None: the divergence core's per-device default (a fixed byte budget).
    """
    maybe_fix_3d_position_ids(data)  # as verl's infer_batch does (mrope position ids of VLMs)
    for key, value in infer_defaults(actor).items():
        if key not in data.keys():
            tu.assign_non_tensor(data, **{key: value})
    if reference is not None:
        _check_same_layout(actor, reference)
    tu.assign_non_tensor(data, calculate_entropy=True)
    disable_offload = tu.get(data, key="disable_auto_offload", default=False)
    policy_engine = actor.engine
    reference_engine = reference.engine if reference is not None else policy_engine
    with ExitStack() as stack:
        stack.enter_context(policy_engine.eval_mode(disable_auto_offload=disable_offload))
        if reference is not None:
            stack.enter_context(reference_engine.eval_mode(disable_auto_offload=disable_offload))
        vocab_size = tokenizer_vocab_size(actor.model_config)
        outputs = _micro_batch_outputs(policy_engine, reference_engine, reference is None, data, chunk_tokens, vocab_size)
    if not policy_engine.is_mp_src_rank_with_outputs():
        return None
    return tu.get_tensordict(tensor_dict=outputs["model_output"], non_tensor_dict={"metrics": {}}).cpu()


def _check_same_layout(actor: Any, reference: Any) -> None:
    """Both models run on the policy's inputs: their sequence-parallel split and padding must agree."""
    pairs = {
        "ulysses_sequence_parallel_size": (actor.engine.ulysses_sequence_parallel_size, reference.engine.ulysses_sequence_parallel_size),
        "use_remove_padding": (actor.model_config.get("use_remove_padding", False), reference.model_config.get("use_remove_padding", False)),
    }
    differ = {name: values for name, values in pairs.items() if values[0] != values[1]}
    if differ:
        raise ValueError(
            "sparse_rlvr's single pass feeds the reference the actor's inputs, so both must be split alike; "
            + "; ".join(f"{name}: actor {a}, ref {b}" for name, (a, b) in differ.items())
            + ": set actor_rollout_ref.ref.* like actor_rollout_ref.actor.* (or sparse_rlvr.enable=false)"
        )


def _micro_batch_outputs(policy_engine, reference_engine, reference_is_adapterless_actor: bool, data, chunk_tokens, vocab_size):
    tu.assign_non_tensor(data, sp_size=policy_engine.ulysses_sequence_parallel_size)
    micro_batches, indices = prepare_micro_batches(
        data=data, dp_group=policy_engine.get_data_parallel_group(), same_micro_num_in_dp=True
    )
    outputs = []
    for micro_batch in micro_batches:
        with torch.no_grad():
            outputs.append({"model_output": _pass(policy_engine, reference_engine, reference_is_adapterless_actor, micro_batch,
                                                  chunk_tokens, vocab_size)})
    return postprocess_batch_func(output_lst=outputs, indices=indices, data=data)


def _pass(policy_engine, reference_engine, reference_is_adapterless_actor, micro_batch, chunk_tokens, vocab_size) -> dict[str, torch.Tensor]:
    micro_batch = micro_batch.to(get_device_id())
    model_inputs, output_args = policy_engine.prepare_model_inputs(micro_batch=micro_batch)
    with _autocast(policy_engine):
        policy_raw = policy_engine.module(**model_inputs, use_cache=False)
    adapter_off = policy_engine.disable_adapter() if reference_is_adapterless_actor else nullcontext()
    with _autocast(reference_engine), adapter_off:
        reference_raw = reference_engine.module(**model_inputs, use_cache=False)

    shift = _shift_per_token(policy_engine, reference_raw.logits, policy_raw.logits, output_args, micro_batch, chunk_tokens, vocab_size)

    reference_batch = micro_batch.copy()
    tu.assign_non_tensor(reference_batch, calculate_entropy=False)
    with _autocast(reference_engine):
        reference_out = reference_engine.prepare_model_outputs(
            output=reference_raw, output_args=output_args, micro_batch=reference_batch, logits_processor_func=None
        )
    del reference_raw  # the reference logits go before the policy's entropy intermediates are built
    with _autocast(policy_engine):
        policy_out = policy_engine.prepare_model_outputs(
            output=policy_raw, output_args=output_args, micro_batch=micro_batch, logits_processor_func=None
        )
    return {"log_probs": policy_out["log_probs"], "entropy": policy_out["entropy"],
            REF_LOG_PROBS: reference_out["log_probs"], **shift}


def _shift_per_token(engine, base_logits, policy_logits, output_args, micro_batch, chunk_tokens, vocab_size) -> dict[str, torch.Tensor]:
    """token_shift_* fields, nested per sequence exactly like verl's log_probs (position i predicts token i+1).

    Only the first `vocab_size` logits (the tokenizer's; None: all) are compared.
    """
    use_remove_padding = tu.get_non_tensor_data(data=micro_batch, key="use_remove_padding", default=True)
    cu_seqlens = micro_batch["input_ids"].offsets()
    base_logits, policy_logits = _full(base_logits)[..., :vocab_size], _full(policy_logits)[..., :vocab_size]
    uniform = _uniform_temperature(micro_batch["temperature"])
    if use_remove_padding:
        # [1, nnz (+ pad), V], split over the sequence-parallel group like verl's rmpad logits
        temperature = uniform if uniform is not None else output_args["temperature_rmpad"]
        values = _compare(base_logits.squeeze(0), policy_logits.squeeze(0), temperature, chunk_tokens)
        values = {k: gather_and_unpad_packed(engine, v, output_args["pad_size"]) for k, v in values.items()}
    else:
        # [bsz, seqlen, V], right-padded: compare each sequence's own rows, no [nnz, V] copy
        temperature = output_args["temperature"]
        lengths = cu_seqlens.diff().tolist()
        per_sequence = [
            _compare(base_logits[b, :n], policy_logits[b, :n], uniform if uniform is not None else temperature[b], chunk_tokens)
            for b, n in enumerate(lengths)
        ]
        values = {k: torch.cat([s[k] for s in per_sequence]) for k in SHIFT_FIELDS}
    return {k: torch.nested.nested_tensor_from_jagged(v, cu_seqlens) for k, v in values.items()}


def _compare(base: torch.Tensor, policy: torch.Tensor, temperature: torch.Tensor | float, chunk_tokens: int | None) -> dict[str, torch.Tensor]:
    """Per-token shift at the rollout temperature, as verl's log-probs; the core scales chunk by chunk (no logits copy)."""
    values = torch.as_tensor(temperature, dtype=torch.float32).flatten()
    if values.numel() and not torch.all(values == values[0]):  # per-token temperatures: scale up front
        scale = values.to(base.device).unsqueeze(-1)
        base, policy, values = base / scale.to(base.dtype), policy / scale.to(policy.dtype), values[:1] * 0 + 1
    t = float(values[0]) if values.numel() else 1.0
    if chunk_tokens is None and base.is_cuda:
        chunk_tokens = max(1, GPU_BUFFER_BYTES // (4 * base.shape[-1]))
    good = _usable_rows(base) & _usable_rows(policy)
    if bool(good.all()):
        result = token_divergence(base, policy, temperature=t, top_k=0, chunk_size=chunk_tokens)
        return {key: getattr(result, field).float() for key, field in SHIFT_FIELDS.items()}
    # NaN/+inf logits (a diverged step): NaN values for those rows, as verl's log-probs would be.
    # Raising here would leave this rank's peers waiting in their next collective.
    logger.warning("sparse_rlvr: %d of %d rows have NaN/+inf logits; their token shift is NaN", int((~good).sum()), len(good))
    out = {key: torch.full((len(base),), float("nan"), device=base.device) for key in SHIFT_FIELDS}
    if bool(good.any()):
        result = token_divergence(base[good], policy[good], temperature=t, top_k=0, chunk_size=chunk_tokens)
        for key, field in SHIFT_FIELDS.items():
            out[key][good] = getattr(result, field).float()
    return out


def _usable_rows(logits: torch.Tensor) -> torch.Tensor:
    """Rows the divergence core accepts: no NaN or +inf, not all -inf (masked)."""
    return ~(torch.isnan(logits) | torch.isposinf(logits)).any(-1) & ~torch.isneginf(logits).all(-1)


def _uniform_temperature(temperature: Any) -> float | None:
    """The micro-batch's temperature when every sample shares it (the usual case), else None."""
    values = torch.as_tensor(temperature.tolist() if hasattr(temperature, "tolist") else temperature, dtype=torch.float64).flatten()
    return float(values[0]) if values.numel() and bool(torch.all(values == values[0])) else None


def _full(logits: torch.Tensor) -> torch.Tensor:
    """Tensor-parallel logits arrive as vocabulary-sharded DTensors: gather them."""
    return logits.full_tensor() if hasattr(logits, "full_tensor") else logits


def _autocast(engine):
    dtype = autocast_dtype(engine)
    return nullcontext() if dtype == torch.float32 else torch.autocast(device_type=get_device_name(), dtype=dtype)
