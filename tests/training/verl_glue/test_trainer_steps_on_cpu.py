"""The trainer's advantage and monitor steps on a real TransferQueue, with verl's own advantage step.

- The advantages are verl's for the inner estimator times `advantage_factor` (weights and top-rho
  mask), and the monitor's `weight_*` scalars and heatmap weights are that same factor.
- Under the loss-time variant the monitor logs no weights (the loss applies its own, per update).
- The heatmap table fetches and decodes only the responses it shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensordict import NonTensorStack, TensorDict
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage

from sparse_rlvr.training.config import PluginConfig
from sparse_rlvr.training.monitor.logging_board import read_logging_board
from sparse_rlvr.training.monitor.metrics import token_shift_metrics
from sparse_rlvr.training.monitor.samples import pick_samples
from sparse_rlvr.training.verl_glue.launch import compose
from sparse_rlvr.training.verl_glue.single_pass import SHIFT_FIELDS
from sparse_rlvr.training.verl_glue.trainer import (
    RESPONSE_SUFFIX,
    TokenShiftTrainer,
    monitor_step,
    step_samples,
)
from sparse_rlvr.training.weighting import advantage_factor
from sparse_rlvr.workflows.tiny_models import tiny_tokenizer

LENGTHS = [5, 3, 7, 4, 6, 2, 7, 5]
UIDS = ["a", "a", "a", "a", "b", "b", "b", "b"]
SCORES = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
LOSS_TIME = "actor_rollout_ref.actor.policy_loss.loss_mode=divergence_weighted"


def nested(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def padded(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


@pytest.fixture
def step(transfer_queue):
    """One GRPO step's fields in TransferQueue, as verl and the single pass leave them before the advantage step."""
    from transfer_queue import KVBatchMeta

    g = torch.Generator().manual_seed(0)
    tokenizer = tiny_tokenizer()
    keys = [f"{uid}{i}_0_0" for i, uid in enumerate(UIDS)]  # verl V1's "{uid}_{session}_{index}"
    rows = {
        "response_mask": [torch.ones(n, dtype=torch.int64) for n in LENGTHS],
        "rm_scores": [torch.nn.functional.one_hot(torch.tensor(n - 1), n).float() * s for n, s in zip(LENGTHS, SCORES)],
        "prompts": [torch.randint(3, 40, (4,), generator=g) for _ in LENGTHS],
        "responses": [torch.randint(3, 40, (n,), generator=g) for n in LENGTHS],
        "entropy": [torch.rand(n, generator=g) for n in LENGTHS],
        "old_log_probs": [-torch.rand(n, generator=g) for n in LENGTHS],
        "ref_log_prob": [-torch.rand(n, generator=g) for n in LENGTHS],
        "advantages": [torch.randn(n, generator=g) for n in LENGTHS],  # the advantage step replaces them
    }
    rows |= {name + RESPONSE_SUFFIX: [torch.rand(n, generator=g) * 0.1 for n in LENGTHS] for name in SHIFT_FIELDS}
    fields = TensorDict({name: nested(values) for name, values in rows.items()}, batch_size=len(keys))
    fields["uid"] = NonTensorStack(*[uid for uid in UIDS])
    fields["reward_model"] = NonTensorStack(*[{"ground_truth": str(n), "style": "rule"} for n in LENGTHS])
    transfer_queue.kv_batch_put(keys=keys, partition_id="train", fields=fields)
    batch = KVBatchMeta(keys=keys, partition_id="train", tags=[{}] * len(keys))
    return batch, {name: padded(values) for name, values in rows.items()}, tokenizer


def trainer_for(*overrides: str) -> TokenShiftTrainer:
    """The real trainer class with its config and plugin section, without Ray workers (only its steps run)."""
    config = compose("grpo_tiny_cpu", list(overrides))
    trainer = TokenShiftTrainer.__new__(TokenShiftTrainer)
    trainer.config, trainer.plugin, trainer._applied_weights = config, PluginConfig.from_config(config.sparse_rlvr), {}
    return trainer


def verls_grpo(tensors: dict) -> torch.Tensor:
    data = DataProto.from_dict(
        tensors={"token_level_rewards": tensors["rm_scores"], "response_mask": tensors["response_mask"].float()},
        non_tensors={"uid": np.array(UIDS, dtype=object)},
    )
    return compute_advantage(data, core_algos.AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=True).batch["advantages"]


def stored_advantages(transfer_queue, batch) -> torch.Tensor:
    data = transfer_queue.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
    return data.to_padded_tensor()["advantages"]


def test_monitor_weights_are_the_weights_the_advantage_step_applied(step, transfer_queue):
    batch, tensors, _ = step
    trainer = trainer_for("sparse_rlvr.weighting.mask=divergence", "sparse_rlvr.weighting.rho=0.25")  # s = 1, alpha = 20
    trainer._compute_advantage(batch, {})
    mask = tensors["response_mask"].bool()
    factor = advantage_factor(trainer.plugin.weighting, mask, divergence=tensors["token_shift_js_response"])
    grpo = verls_grpo(tensors)
    assert (grpo != 0).any() and (factor[mask] == 0).any() and (factor[mask] > 1).any()
    torch.testing.assert_close(stored_advantages(transfer_queue, batch), grpo * factor, rtol=0, atol=0)

    monitored = monitor_step(batch, trainer._applied_weights)
    torch.testing.assert_close(monitored["weights"][mask], factor[mask], rtol=0, atol=0)
    scalars = token_shift_metrics(monitored["js"], monitored["mask"], weights=monitored["weights"])
    assert scalars["token_shift/weight_min"] == 0.0  # tokens outside the top-rho mask got weight 0
    assert scalars["token_shift/weight_max"] == pytest.approx(float(factor[mask].max()))
    tokenizer = tiny_tokenizer()
    for row, sample in enumerate(step_samples(batch, monitored, tokenizer)):
        assert sample.weights == factor[row, : LENGTHS[row]].tolist()  # the heatmap's w


def test_zero_scale_leaves_verls_advantages_and_logs_no_weights(step, transfer_queue):
    batch, tensors, _ = step
    trainer = trainer_for("sparse_rlvr.weighting.scale=0")
    trainer._compute_advantage(batch, {})
    assert torch.equal(stored_advantages(transfer_queue, batch), verls_grpo(tensors))
    assert "weights" not in monitor_step(batch, trainer._applied_weights)


def test_loss_time_variant_logs_no_weights(step, transfer_queue):
    """The loss weights by KL(pi_old || pi_theta) at every micro-batch inside the workers: no per-token weight reaches here."""
    batch, tensors, _ = step
    trainer = trainer_for(LOSS_TIME, "algorithm.adv_estimator=grpo")
    assert trainer.plugin.weighting.scale == 1.0
    trainer._compute_advantage(batch, {})
    assert torch.equal(stored_advantages(transfer_queue, batch), verls_grpo(tensors))
    monitored = monitor_step(batch, trainer._applied_weights)
    assert "weights" not in monitored
    assert not any(key.startswith("token_shift/weight") for key in token_shift_metrics(monitored["js"], monitored["mask"]))


class CountingTokenizer:
    """The tiny tokenizer, recording every decode call."""

    def __init__(self) -> None:
        self.tokenizer, self.decoded = tiny_tokenizer(), []

    def decode(self, ids, **kwargs):
        self.decoded.append(list(ids))
        return self.tokenizer.decode(ids, **kwargs)


@pytest.mark.parametrize("board", [False, True])
def test_heatmaps_decode_only_the_responses_they_show(step, tmp_path, board):
    batch, tensors, _ = step
    trainer = trainer_for("sparse_rlvr.monitor.heatmap_samples=2", "sparse_rlvr.monitor.heatmap_freq=1",
                          *([f"sparse_rlvr.monitor.logging_board_dir={tmp_path}"] if board else []))
    trainer.tokenizer = CountingTokenizer()
    monitored = monitor_step(batch, {})
    trainer._log_media(batch, monitored, 3)
    everything = step_samples(batch, monitored, tiny_tokenizer())
    shown = pick_samples(everything, 2, seed=3)
    decoded = [sample for sample in everything if sample.prompt_ids in trainer.tokenizer.decoded]
    if board:  # the RL Logging Board dump needs every response
        assert len(decoded) == len(LENGTHS)
        records = read_logging_board(tmp_path / "grpo_tiny_cpu")  # <board root>/<trainer.experiment_name>/
        assert [r["ground_truth"] for r in records[3]] == [str(n) for n in LENGTHS]
    else:
        assert sorted(s.uid + str(s.prompt_ids) for s in decoded) == sorted(s.uid + str(s.prompt_ids) for s in shown)
        assert len(trainer.tokenizer.decoded) == sum(2 + len(s.tokens) for s in shown)  # prompt, response, each token
