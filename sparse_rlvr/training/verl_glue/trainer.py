"""verl's synchronous V1 trainer with sparse_rlvr's single pass, weighted advantages and token-shift monitor.

With `sparse_rlvr.enable` on, the changes to verl's step are:
- the actor worker class is `TokenShiftWorker`, with the reference model always loaded (also in
  DAPO runs without a KL term; with LoRA the reference is the actor without its adapter);
- the old-log-prob request asks that worker for the single pass, which also returns reference
  log-probs and per-token JS/KLs; the reference step then only files those (no forward);
- the metrics step adds `token_shift/` scalars, a JS histogram, heatmap tables and the optional
  RL Logging Board dump;
- the actor update does not fetch the plugin's per-token fields from TransferQueue.
With `algorithm.adv_estimator=divergence_weighted` (plugin on or off), the advantage step is verl's
own for the inner estimator (`sparse_rlvr.weighting.estimator`), after which this trainer multiplies
the advantages by `weighting.advantage_factor` of the step's divergence and entropy, passed
explicitly, and keeps that factor for the monitor's `weight_*` scalars and heatmaps.
Everything else, and every method with the plugin off, is verl's. The verl internals this module
relies on are reached through `verl_internals`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ray
import torch
import transfer_queue as tq
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.workers.utils.padding import response_from_nested, response_to_nested

from sparse_rlvr.training.config import ESTIMATOR_NAME, PluginConfig, check_run_config, check_worker_weighting
from sparse_rlvr.training.monitor.metrics import token_shift_metrics
from sparse_rlvr.training.monitor.samples import ShiftSample
from sparse_rlvr.training.verl_glue.actor_worker import SHIFT_REQUEST, TokenShiftWorker, reference_is_adapterless_actor
from sparse_rlvr.training.verl_glue.single_pass import REF_LOG_PROBS, SHIFT_FIELDS
from sparse_rlvr.training.verl_glue.verl_internals import (
    actor_is_separate,
    sync_trainer_is,
    task_runner_base,
    trainer_tracking,
    use_actor_worker,
    verl_advantage_step_uses,
)
from sparse_rlvr.training.weighting import WeightingConfig, advantage_factor

logger = logging.getLogger(__name__)

SOURCE_FIELD = {"js": "token_shift_js", "kl_ref": "token_shift_kl_policy_base", "kl_ref_reverse": "token_shift_kl_base_policy"}
"""sparse_rlvr.weighting.source -> the per-token field it weights by."""
RESPONSE_SUFFIX = "_response"
"""The single pass returns whole sequences; the trainer files the response part under key + this."""
REPLAY_POLL_S = 0.1
"""How often the trainer looks for finished rollouts (verl: 2 s)."""
PLUGIN_FIELDS = frozenset({REF_LOG_PROBS, *SHIFT_FIELDS, *(name + RESPONSE_SUFFIX for name in SHIFT_FIELDS)})
"""TransferQueue fields the plugin adds to a step; the actor update reads none of them."""


class TokenShiftTrainer(PPOTrainerSync):
    """PPOTrainerSync plus the single pass, the explicit divergence weighting and the monitor.

    Overrides only verl's `verl_internals.TRAINER_HOOKS`, each calling verl's own first or around.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.plugin = PluginConfig.from_config(config.get("sparse_rlvr"))
        if self.plugin.enable:
            self.use_reference_policy = True  # the base model is what the monitor compares against
        check_run_config(config, self.plugin)
        check_worker_weighting(config, self.plugin)
        self._applied_weights: dict[str, torch.Tensor] = {}
        """This step's advantage factor per TransferQueue key (response tokens), for the monitor."""
        # verl's replay buffer checks for finished rollouts every 2 s, so every step's `gen` rounded up to
        # whole 2 s (~1 s lost per step: half a tiny CPU step); a check is one TransferQueue metadata call
        self.replay_buffer.poll_interval = REPLAY_POLL_S

    # -- workers --------------------------------------------------------------------------------
    def _init_resource_pool_mgr(self) -> None:
        super()._init_resource_pool_mgr()
        if not self.plugin.enable:
            return
        if actor_is_separate(self):
            raise ValueError(
                "sparse_rlvr.enable needs the hybrid actor+rollout(+ref) worker; this run separates the actor "
                "from the rollout. Use the synchronous colocated trainer, or set sparse_rlvr.enable=false"
            )
        lora = reference_is_adapterless_actor(self.config.actor_rollout_ref.model)
        use_actor_worker(self, Role.ActorRollout if lora else Role.ActorRolloutRef, ray.remote(TokenShiftWorker))

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
        """divergence_weighted: verl's own advantage step for the inner estimator, then A~ = f * A.

        verl's step gives an estimator only rewards, mask, uid and config, so instead of passing the
        divergence through it, verl computes the inner estimator's advantages exactly as it would
        (agent-loop sessions, KL in reward, rollout correction) and this method multiplies them by
        `advantage_factor(weighting, mask, divergence, entropy)`, the same function the registered
        estimator applies. s = 0 with no mask leaves verl's advantages untouched.
        """
        self._applied_weights = {}
        if self.config.algorithm.adv_estimator != ESTIMATOR_NAME:
            return super()._compute_advantage(batch, metrics)
        weighting = self.plugin.weighting
        with verl_advantage_step_uses(self.config.algorithm, weighting.estimator):
            batch = super()._compute_advantage(batch, metrics)
        if weighting.scale == 0 and weighting.mask == "none":
            return batch
        self._applied_weights = weight_advantages(batch, weighting, with_divergence=self.plugin.enable)
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
        step = monitor_step(batch, self._applied_weights)
        metrics.update(
            token_shift_metrics(
                step["js"], step["mask"], base_entropy=step["base_entropy"], top1_agree=step["top1_agree"],
                policy_top1_rank_in_base=step["policy_top1_rank_in_base"], weights=step.get("weights"),
            )
        )
        self._log_media(batch, step, global_steps)

    def _log_media(self, batch: KVBatchMeta, step: dict[str, torch.Tensor], global_steps: int) -> None:
        """JS histogram, heatmap table (only the picked responses are fetched and decoded) and the board dump."""
        from sparse_rlvr.training.monitor.logging_board import write_logging_board_step
        from sparse_rlvr.training.monitor.media import log_token_shift_media
        from sparse_rlvr.training.monitor.samples import pick_samples

        monitor = self.plugin.monitor
        heatmaps = monitor.heatmap_freq > 0 and global_steps % monitor.heatmap_freq == 0
        chosen = None
        if monitor.logging_board_dir:  # the dump needs every response
            samples = step_samples(batch, step, self.tokenizer)
            write_logging_board_step(monitor.logging_board_dir, global_steps, samples,
                                     experiment=self.config.trainer.experiment_name)
            chosen = pick_samples(samples, monitor.heatmap_samples, seed=global_steps) if heatmaps else None
        elif heatmaps:
            rows = pick_rows(step, monitor.heatmap_samples, seed=global_steps)
            chosen = step_samples(batch, step, self.tokenizer, rows=rows)
        js_values = step["js"][step["mask"]].double().numpy()
        log_token_shift_media(trainer_tracking(self), global_steps, js_values, chosen, bins=monitor.histogram_bins)


def weight_advantages(batch: KVBatchMeta, weighting: WeightingConfig, with_divergence: bool) -> dict[str, torch.Tensor]:
    """Multiply the step's advantages in TransferQueue by `advantage_factor`; returns the factor per key.

    The divergence is the single pass's response field for `weighting.source` (absent when the
    plugin is off: then only the entropy mask can apply), the entropy verl's old-log-prob one.
    """
    source = SOURCE_FIELD[weighting.source] + RESPONSE_SUFFIX
    use_entropy = weighting.mask == "entropy"
    fields = ["advantages", "response_mask"] + (["entropy"] if use_entropy else []) + ([source] if with_divergence else [])
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
    nested_mask = data["response_mask"]
    padded = data.to_padded_tensor()
    divergence = padded[source].float() if with_divergence else None
    entropy = padded["entropy"].float() if use_entropy else None
    factor = advantage_factor(weighting, padded["response_mask"], divergence=divergence, entropy=entropy)
    advantages = padded["advantages"] * factor
    out = TensorDict({"advantages": response_to_nested(advantages, nested_mask)}, batch_size=len(batch))
    tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=out)
    lengths = nested_mask.offsets().diff().tolist()
    return {key: factor[row, :n] for row, (key, n) in enumerate(zip(batch.keys, lengths))}


def actor_update_fields(batch: KVBatchMeta) -> list[str]:
    """The batch's fields (those named, else all stored in TransferQueue) minus the plugin's."""
    names = batch.fields
    if names is None:
        names = tq.get_client().kv_retrieve_meta(keys=batch.keys, partition_id=batch.partition_id).field_names
    return [name for name in names if name not in PLUGIN_FIELDS]


def monitor_step(batch: KVBatchMeta, applied_weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """[B, T] response-token tensors of the step (padding rows dropped) the monitor reduces, keyed by
    TokenDivergence field (SHIFT_FIELDS), plus the response mask, the kept rows, each row's response
    length and, when the advantage step weighted them, the weights it applied (`applied_weights`).

    Under the loss-time variant (`policy_loss.loss_mode=divergence_weighted`) there are no weights
    here: the loss recomputes them from pi_theta at every micro-batch of every PPO epoch inside the
    workers, so no single per-token weight exists to log; the loss reports its own mean weight
    (`sparse_rlvr/loss_weight_mean` among verl's actor metrics).
    """
    names = [name + RESPONSE_SUFFIX for name in SHIFT_FIELDS]
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[*names, "response_mask"])
    lengths = data["response_mask"].offsets().diff()
    data = data.to_padded_tensor()
    keep = torch.tensor([not tag.get("is_padding", False) for tag in batch.tags], dtype=torch.bool)
    if not keep.any():
        keep = torch.ones_like(keep)
    step = {short: data[name + RESPONSE_SUFFIX][keep].float() for name, short in SHIFT_FIELDS.items()}
    step |= {"mask": data["response_mask"][keep].bool(), "keep": keep, "length": lengths[keep]}
    if applied_weights:
        keys = [key for key, kept in zip(batch.keys, keep.tolist()) if kept]
        weights = torch.zeros_like(step["js"])
        for row, key in enumerate(keys):
            values = applied_weights[key]
            weights[row, : len(values)] = values
        step["weights"] = weights
    return step


@dataclass(frozen=True)
class _RowPreview:
    """What `pick_samples` reads of a sample (whether it has tokens, its JS), with no text decoded."""

    tokens: range
    js: list[float]
    mean_js = ShiftSample.mean_js
    max_js = ShiftSample.max_js


def pick_rows(step: dict[str, torch.Tensor], k: int, seed: int) -> list[int]:
    """Rows of the step (among the kept ones) that `pick_samples` would choose from their ShiftSamples."""
    from sparse_rlvr.training.monitor.samples import pick_samples

    previews = [_RowPreview(range(n), js[:n]) for n, js in zip(step["length"].tolist(), step["js"].tolist())]
    chosen = pick_samples(previews, k, seed=seed)
    return [next(i for i, p in enumerate(previews) if p is c) for c in chosen]


SAMPLE_FIELDS = ["prompts", "responses", "old_log_probs", "ref_log_prob", "entropy", "advantages", "rm_scores", "uid", "reward_model"]
"""What a ShiftSample needs from TransferQueue (a missing field, e.g. reward_model in a run without it, is skipped)."""


def step_samples(batch: KVBatchMeta, step: dict[str, torch.Tensor], tokenizer: Any, rows: list[int] | None = None) -> list[ShiftSample]:
    """ShiftSamples of the kept rows `rows` (indices among the kept rows; None: all), in that order.

    Only those rows are fetched from TransferQueue and decoded.
    """
    batch_rows = step["keep"].nonzero().flatten().tolist()
    rows = list(range(len(batch_rows))) if rows is None else rows
    if not rows:
        return []
    keys = [batch.keys[batch_rows[row]] for row in rows]
    data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=SAMPLE_FIELDS)
    return build_samples(data, {name: values[rows] for name, values in step.items() if name in ("js", "weights")}, tokenizer)


def build_samples(data: TensorDict, step_rows: dict[str, torch.Tensor], tokenizer: Any) -> list[ShiftSample]:
    """One ShiftSample per row of `data` (as TransferQueue returns SAMPLE_FIELDS): tokens, probabilities,
    JS and applied weights (`step_rows`, the same rows), advantages, reward."""
    uids = data.pop("uid").tolist() if "uid" in data.keys() else [str(i) for i in range(len(data))]
    infos = data.pop("reward_model").tolist() if "reward_model" in data.keys() else [None] * len(uids)
    truths = [_ground_truth(info) for info in infos]
    prompts, responses = data.pop("prompts"), data.pop("responses")
    data = data.to_padded_tensor()
    samples = []
    for row in range(len(uids)):
        ids = responses[row].tolist()  # every response token (multi-turn masks have holes: keep positions)
        n = len(ids)
        per_token = lambda t: t[row][:n].float().tolist()  # noqa: E731
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
                js=step_rows["js"][row][:n].tolist(),
                reward=float(data["rm_scores"][row].sum()),
                advantages=per_token(data["advantages"]),
                weights=step_rows["weights"][row][:n].tolist() if "weights" in step_rows else None,
                prompt_ids=prompts[row].tolist(),
                ground_truth=truths[row],
            )
        )
    return samples


def _ground_truth(reward_model: Any) -> str | None:
    """verl's per-sample ``reward_model`` entry ({"ground_truth": ..., "style": ...}) -> the answer as text."""
    truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    return None if truth is None else str(truth)


@ray.remote
class TokenShiftTaskRunner(task_runner_base()):
    """verl's V1 TaskRunner, building TokenShiftTrainer where verl builds PPOTrainerSync."""

    def run(self, config: Any) -> None:
        with sync_trainer_is(TokenShiftTrainer):
            super().run(config)
