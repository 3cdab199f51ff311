"""verl's synchronous V1 trainer with sparse_rlvr's single pass, weighted advantages and token-shift monitor.

With `sparse_rlvr.enable` on, the changes to verl's step are:
- the actor worker class is `TokenShiftWorker`, with the reference model always loaded (also in
  DAPO runs without a KL term; with LoRA the reference is the actor without its adapter);
- the old-log-prob request asks that worker for the single pass, which also returns reference
  log-probs and per-token JS/KLs; the reference step then only files those (no forward);
- the advantage step hands the per-token divergence and entropy to the `divergence_weighted`
  estimator;
- the metrics step adds `token_shift/` scalars, a JS histogram, heatmap tables and the optional
  RL Logging Board dump;
- the actor update does not fetch the plugin's per-token fields from TransferQueue.
With it off, every method is verl's.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any

import ray
import torch
import transfer_queue as tq
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.trainer.main_ppo import TaskRunnerV1
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1 import trainer_base
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.workers.utils.padding import response_from_nested

from sparse_rlvr.training.verl_glue.registered_algorithms import ESTIMATOR, StepTokens, step_tokens
from sparse_rlvr.training.monitor.metrics import token_shift_metrics
from sparse_rlvr.training.config import PluginConfig, check_run_config
from sparse_rlvr.training.verl_glue.single_pass import REF_LOG_PROBS, SHIFT_FIELDS
from sparse_rlvr.training.verl_glue.actor_worker import SHIFT_REQUEST, TokenShiftWorker, reference_is_adapterless_actor
from sparse_rlvr.training.weighting import divergence_weights

logger = logging.getLogger(__name__)

SOURCE_FIELD = {"js": "token_shift_js", "kl_ref": "token_shift_kl_policy_base", "kl_ref_reverse": "token_shift_kl_base_policy"}
"""sparse_rlvr.weighting.source -> the per-token field it weights by."""
RESPONSE_SUFFIX = "_response"
"""The single pass returns whole sequences; the trainer files the response part under key + this."""
PLUGIN_FIELDS = frozenset({REF_LOG_PROBS, *SHIFT_FIELDS, *(name + RESPONSE_SUFFIX for name in SHIFT_FIELDS)})
"""TransferQueue fields the plugin adds to a step; the actor update reads none of them."""


class TokenShiftTrainer(PPOTrainerSync):
    """PPOTrainerSync plus the single pass, the divergence-weighted estimator's inputs and the monitor."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.plugin = PluginConfig.from_config(config.get("sparse_rlvr"))
        if self.plugin.enable:
            self.use_reference_policy = True  # the base model is what the monitor compares against
        check_run_config(config, self.plugin)

    # -- workers --------------------------------------------------------------------------------
    def _init_resource_pool_mgr(self) -> None:
        super()._init_resource_pool_mgr()
        if not self.plugin.enable:
            return
        mapping = self.role_worker_mapping
        if Role.Actor in mapping:
            raise ValueError(
                "sparse_rlvr.enable needs the hybrid actor+rollout(+ref) worker; this run separates the actor "
                "from the rollout. Use the synchronous colocated trainer, or set sparse_rlvr.enable=false"
            )
        lora = reference_is_adapterless_actor(self.config.actor_rollout_ref.model)
        role = Role.ActorRollout if lora else Role.ActorRolloutRef
        for old in (Role.ActorRollout, Role.ActorRolloutRef):
            if old in mapping and old != role:
                del mapping[old]
                self.mapping[role] = self.mapping.pop(old)
        mapping[role] = ray.remote(TokenShiftWorker)

    # -- step -----------------------------------------------------------------------------------
    def _compute_old_log_prob(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        if not self.plugin.enable:
            return super()._compute_old_log_prob(batch, metrics)
        batch.extra_info[SHIFT_REQUEST] = self.plugin.monitor.chunk_tokens or 0
        try:
            return super()._compute_old_log_prob(batch, metrics)
        finally:
            batch.extra_info.pop(SHIFT_REQUEST, None)

    def _compute_ref_log_prob(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """The single pass already produced the reference log-probs: file their response part, no forward."""
        if not self.plugin.enable:
            return super()._compute_ref_log_prob(batch, metrics)
        fields = [REF_LOG_PROBS, *SHIFT_FIELDS]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[*fields, "response_mask"])
        mask = data["response_mask"]
        out = {"ref_log_prob": response_from_nested(data[REF_LOG_PROBS], mask)}
        out |= {name + RESPONSE_SUFFIX: response_from_nested(data[name], mask) for name in SHIFT_FIELDS}
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=TensorDict(out, batch_size=len(batch)))
        return batch

    def _compute_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        if self.config.algorithm.adv_estimator != ESTIMATOR:
            return super()._compute_advantage(batch, metrics)
        field = SOURCE_FIELD[self.plugin.weighting.source] + RESPONSE_SUFFIX
        fields = ["entropy", "response_mask"] + ([field] if self.plugin.enable else [])  # off: entropy mask only
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields).to_padded_tensor()
        divergence = data[field].float() if self.plugin.enable else None
        tokens = StepTokens(divergence=divergence, entropy=data["entropy"].float(), batch_keys=list(batch.keys))
        with step_tokens(tokens):
            batch = super()._compute_advantage(batch, metrics)
        return batch

    def _update_actor(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """verl's update, fetching every field of the step except the plugin's per-token ones.

        verl's update reads all fields of the batch when none are named; the plugin's 13 per-token
        float fields would roughly double what each actor rank pulls from TransferQueue.
        """
        if not self.plugin.enable:
            return super()._update_actor(batch, metrics)
        named = batch.fields
        batch.fields = actor_update_fields(batch)
        try:
            return super()._update_actor(batch, metrics)
        finally:
            batch.fields = named

    # -- monitor --------------------------------------------------------------------------------
    def _compute_metrics(self, batch: KVBatchMeta, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        if not self.plugin.enable:
            return
        step = _step_tensors(batch, self.plugin)
        metrics.update(
            token_shift_metrics(
                step["js"], step["mask"], base_entropy=step["base_entropy"], top1_agree=step["top1_agree"],
                policy_top1_rank_in_base=step["policy_top1_rank_in_base"], weights=step.get("weights"),
            )
        )
        self._log_media(batch, step, global_steps)

    def _log_media(self, batch: KVBatchMeta, step: dict[str, torch.Tensor], global_steps: int) -> None:
        from sparse_rlvr.training.monitor.logging_board import write_logging_board_step
        from sparse_rlvr.training.monitor.samples import pick_samples
        from sparse_rlvr.training.monitor.media import log_token_shift_media

        monitor = self.plugin.monitor
        heatmaps = monitor.heatmap_freq > 0 and global_steps % monitor.heatmap_freq == 0
        samples = None
        if heatmaps or monitor.logging_board_dir:
            samples = _samples(batch, step, self.tokenizer)
        js_values = step["js"][step["mask"]].double().numpy()
        chosen = pick_samples(samples, monitor.heatmap_samples, seed=global_steps) if heatmaps else None
        log_token_shift_media(getattr(self, "logger", None), global_steps, js_values, chosen, bins=monitor.histogram_bins)
        if monitor.logging_board_dir:
            write_logging_board_step(monitor.logging_board_dir, global_steps, samples)


def actor_update_fields(batch: KVBatchMeta) -> list[str]:
    """The batch's fields (those named, else all stored in TransferQueue) minus the plugin's."""
    names = batch.fields
    if names is None:
        names = tq.get_client().kv_retrieve_meta(keys=batch.keys, partition_id=batch.partition_id).field_names
    return [name for name in names if name not in PLUGIN_FIELDS]


def _step_tensors(batch: KVBatchMeta, plugin: PluginConfig) -> dict[str, torch.Tensor]:
    """[B, T] response-token tensors of the step (padding rows dropped) the monitor reduces, keyed by
    TokenDivergence field (SHIFT_FIELDS), plus the response mask, the kept rows and the weights w."""
    names = [name + RESPONSE_SUFFIX for name in SHIFT_FIELDS]
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[*names, "response_mask"])
    data = data.to_padded_tensor()
    keep = torch.tensor([not tag.get("is_padding", False) for tag in batch.tags], dtype=torch.bool)
    if not keep.any():
        keep = torch.ones_like(keep)
    step = {short: data[name + RESPONSE_SUFFIX][keep].float() for name, short in SHIFT_FIELDS.items()}
    step |= {"mask": data["response_mask"][keep].bool(), "keep": keep}
    weighting = plugin.weighting
    if weighting.scale != 0:
        source = SHIFT_FIELDS[SOURCE_FIELD[weighting.source]]
        step["weights"] = divergence_weights(step[source], weighting.scale, weighting.alpha)
    return step


def _samples(batch: KVBatchMeta, step: dict[str, torch.Tensor], tokenizer: Any) -> list:
    """One ShiftSample per kept response: tokens, probabilities, JS, weights, advantages, reward."""
    from sparse_rlvr.training.monitor.samples import ShiftSample

    fields = ["prompts", "responses", "response_mask", "old_log_probs", "ref_log_prob", "entropy", "advantages", "rm_scores", "uid"]
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
    uids = data.pop("uid").tolist() if "uid" in data.keys() else [str(i) for i in range(len(batch))]
    prompts, responses = data.pop("prompts"), data.pop("responses")
    data = data.to_padded_tensor()
    samples = []
    kept = 0
    for row, keep in enumerate(step["keep"].tolist()):
        if not keep:
            continue
        ids = responses[row].tolist()  # every response token (multi-turn masks have holes: keep positions)
        n = len(ids)
        per_token = lambda t: t[row][:n].float().tolist()  # noqa: E731
        weights = step["weights"][kept][:n].tolist() if "weights" in step else None
        samples.append(
            ShiftSample(
                uid=str(uids[row]),
                prompt=tokenizer.decode(prompts[row].tolist(), skip_special_tokens=True),
                response=tokenizer.decode(ids, skip_special_tokens=True),
                tokens=[tokenizer.decode([i]) for i in ids],
                token_ids=ids,
                logprobs=per_token(data["old_log_probs"]),
                ref_logprobs=per_token(data["ref_log_prob"]),
                entropy=per_token(data["entropy"]),
                js=step["js"][kept][:n].tolist(),
                reward=float(data["rm_scores"][row].sum()),
                advantages=per_token(data["advantages"]),
                weights=weights,
                prompt_ids=prompts[row].tolist(),
            )
        )
        kept += 1
    return samples


@contextmanager
def _sync_trainer_is(cls: type) -> Any:
    """Within this (TaskRunner) process, verl's "sync" trainer name builds `cls` (a PPOTrainerSync)."""
    registry = trainer_base.TRAINER_REGISTRY
    previous = registry["sync"]
    registry["sync"] = cls
    try:
        yield
    finally:
        registry["sync"] = previous


@ray.remote
class TokenShiftTaskRunner(TaskRunnerV1.__ray_actor_class__):
    """verl's V1 TaskRunner, building TokenShiftTrainer where verl builds PPOTrainerSync."""

    def run(self, config: Any) -> None:
        with _sync_trainer_is(TokenShiftTrainer):
            super().run(config)
