"""Divergence-weighted advantages and loss against verl's own GRPO and vanilla-loss functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.workers.config.actor import FSDPActorConfig

from sparse_rlvr.training.config import ESTIMATOR_NAME, WEIGHTING_ENV
from sparse_rlvr.training.verl_glue.registered_algorithms import (
    compute_divergence_weighted_advantage, compute_policy_loss_divergence_weighted, register_algorithms,
)
from sparse_rlvr.training.weighting import WeightingConfig, divergence_weights, k3_kl, top_fraction_mask


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    bsz, length = 8, 12
    lengths = torch.randint(3, length + 1, (bsz,), generator=g)
    mask = (torch.arange(length) < lengths[:, None]).float()
    rewards = torch.zeros(bsz, length)
    rewards[torch.arange(bsz), lengths - 1] = torch.randint(0, 2, (bsz,), generator=g).float() * 2 - 1
    index = np.array(["a", "a", "a", "a", "b", "b", "b", "b"], dtype=object)
    divergence = torch.rand(bsz, length, generator=g) * 0.69 * mask
    return rewards, mask, index, divergence


def algorithm_config(**kwargs):
    return OmegaConf.create({"adv_estimator": ESTIMATOR_NAME, "norm_adv_by_std_in_grpo": True} | kwargs)


def test_registered_in_verls_registries():
    assert register_algorithms()
    assert core_algos.get_adv_estimator_fn(ESTIMATOR_NAME) is compute_divergence_weighted_advantage
    assert core_algos.get_policy_loss_fn(ESTIMATOR_NAME) is compute_policy_loss_divergence_weighted


def test_weighting_off_equals_verls_grpo_exactly(batch):
    rewards, mask, index, divergence = batch
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index})
    expected = compute_advantage(data, core_algos.AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=True)
    ours, returns = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                          weighting=WeightingConfig(scale=0.0))
    assert torch.equal(ours, expected.batch["advantages"]) and torch.equal(returns, expected.batch["returns"])
    # and through verl's own dispatcher, by the registered name
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index})
    dispatched = compute_advantage(data, ESTIMATOR_NAME, config=algorithm_config())
    assert torch.equal(dispatched.batch["advantages"], expected.batch["advantages"])


def test_agent_loop_sessions_group_like_verls_v1_trainer(batch):
    """Keys "{uid}_{session}_{index}": GRPO over each session's final output, broadcast to the session."""
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    rewards, mask, index, divergence = batch
    # prompt a: sessions 0,1 with two outputs each; prompt b: four single-output sessions
    keys = ["a_0_0", "a_0_1", "a_1_0", "a_1_1", "b_0_0", "b_1_0", "b_2_0", "b_3_0"]
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": index})
    expected = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator=core_algos.AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=True,
        config=algorithm_config(),
    ).batch["advantages"]
    plain, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    assert not torch.equal(expected, plain)  # sessions really change the groups here
    off, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                   batch_keys=keys, weighting=WeightingConfig(scale=0.0))
    on, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                  batch_keys=keys, weighting=WeightingConfig(scale=1.0, alpha=5.0))
    assert torch.equal(off, expected)
    torch.testing.assert_close(on, expected * divergence_weights(divergence, 1.0, 5.0), rtol=0, atol=0)
    with pytest.raises(ValueError, match="rows must align"):
        compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                              batch_keys=keys[:-1], weighting=WeightingConfig(scale=0.0))


def test_weights_multiply_grpo_advantages(batch):
    rewards, mask, index, divergence = batch
    grpo, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    ours, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                    weighting=WeightingConfig(scale=1.0, alpha=5.0))
    w64 = 1 + 1.0 * (1 / (1 + np.exp(-5.0 * divergence.double().numpy())) - 0.5)
    np.testing.assert_allclose(ours.numpy(), grpo.numpy() * w64, rtol=1e-6, atol=1e-7)
    weights = ours[grpo != 0] / grpo[grpo != 0]
    assert weights.min() >= 0.5 - 1e-6 and weights.max() <= 1.5 + 1e-6 and weights.std() > 0.05  # weights vary


def test_alpha_sign_chooses_which_tokens_are_boosted():
    d = torch.tensor([0.0, 0.1, 0.6])
    high, low = divergence_weights(d, 1.0, 10.0), divergence_weights(d, 1.0, -10.0)
    assert high[2] > high[1] > high[0] == 1.0 and low[2] < low[1] < low[0] == 1.0


def test_divergence_mask_keeps_the_top_fraction(batch):
    rewards, mask, index, divergence = batch
    kept = top_fraction_mask(divergence, mask, 0.25)
    assert int(kept.sum()) == round(0.25 * mask.sum().item()) and not (kept & (mask == 0)).any()
    assert divergence[kept].min() >= divergence[mask.bool() & ~kept].max()
    ours, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                    weighting=WeightingConfig(mask="divergence", rho=0.25))
    grpo, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    assert torch.equal(ours, grpo * kept)


def test_entropy_mask_needs_entropy(batch):
    rewards, mask, index, divergence = batch
    with pytest.raises(ValueError, match="entropy"):
        compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                              weighting=WeightingConfig(mask="entropy"))
    entropy = torch.rand_like(divergence)
    ours, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), entropy=entropy,
                                                    weighting=WeightingConfig(mask="entropy", rho=0.2))
    grpo, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    assert torch.equal(ours, grpo * top_fraction_mask(entropy, mask, 0.2))


def test_missing_divergence_is_a_clear_error(batch):
    rewards, mask, index, _ = batch
    with pytest.raises(ValueError, match="needs per-token divergences.*sparse_rlvr.train"):
        compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), weighting=WeightingConfig(scale=0.5))


def test_wraps_other_registered_estimators(batch):
    rewards, mask, index, divergence = batch
    rloo, _ = core_algos.get_adv_estimator_fn("rloo")(token_level_rewards=rewards, response_mask=mask, index=index, config=algorithm_config())
    ours, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence,
                                                    weighting=WeightingConfig(estimator="rloo"))
    assert torch.equal(ours, rloo)


def test_options_come_from_the_run_environment(batch, monkeypatch):
    rewards, mask, index, divergence = batch
    monkeypatch.setenv(WEIGHTING_ENV, json.dumps({"scale": 2.0, "alpha": -3.0}))
    ours, _ = compute_divergence_weighted_advantage(rewards, mask, index, algorithm_config(), divergence=divergence)
    grpo, _ = core_algos.compute_grpo_outcome_advantage(rewards, mask, index)
    torch.testing.assert_close(ours, grpo * divergence_weights(divergence, 2.0, -3.0))


@pytest.mark.parametrize("bad,message", [
    ({"scale": 3.0}, "scale must be in"), ({"source": "tv"}, "source must be"), ({"mask": "all"}, "mask must be"),
    ({"rho": 0.0}, "rho must be"), ({"slope": 1.0}, "unknown sparse_rlvr.weighting option"),
])
def test_bad_options_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        WeightingConfig.from_mapping(bad)


def _actor_config():
    return FSDPActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, ppo_mini_batch_size=4)


def test_loss_with_weighting_off_equals_verls_vanilla_loss(batch, monkeypatch):
    _, mask, _, _ = batch
    g = torch.Generator().manual_seed(1)
    old, new, adv = (torch.randn(mask.shape, generator=g) for _ in range(3))
    monkeypatch.delenv(WEIGHTING_ENV, raising=False)
    ours, _ = compute_policy_loss_divergence_weighted(old, new, adv, mask, "token-mean", _actor_config())
    theirs, _ = core_algos.compute_policy_loss_vanilla(old, new, adv, mask, "token-mean", _actor_config())
    assert torch.equal(ours, theirs)
    monkeypatch.setenv(WEIGHTING_ENV, json.dumps({"scale": 1.0, "alpha": 4.0}))
    weighted, metrics = compute_policy_loss_divergence_weighted(old, new, adv, mask, "token-mean", _actor_config())
    w = divergence_weights(k3_kl(old, new), 1.0, 4.0)
    expected, _ = core_algos.compute_policy_loss_vanilla(old, new, adv * w, mask, "token-mean", _actor_config())
    torch.testing.assert_close(weighted, expected)
    assert metrics["sparse_rlvr/loss_weight_mean"] > 1.0


def test_k3_kl_is_nonnegative_and_zero_when_equal():
    old = torch.randn(100)
    assert torch.equal(k3_kl(old, old), torch.zeros(100))
    assert (k3_kl(old, old + torch.randn(100)) >= 0).all()
