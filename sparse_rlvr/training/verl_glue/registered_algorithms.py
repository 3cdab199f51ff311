"""verl registrations of the divergence-weighted advantage estimator and policy loss.

Importing this module registers, in verl's own registries:
- `algorithm.adv_estimator=divergence_weighted`: the named outcome estimator's advantages (GRPO
  by default) times divergence weights, optionally restricted to a top-rho token mask;
- `actor.policy_loss.loss_mode=divergence_weighted`: the loss-time variant, weights from the
  per-token KL(pi_old || pi_theta) inside the update, then verl's vanilla clipped loss.

How the inputs arrive:
- The estimator takes the per-token divergence, entropy, agent-loop keys and weighting as explicit
  arguments. sparse_rlvr's trainer does not go through verl's dispatcher for the weighting: it
  lets verl compute the inner estimator's advantages and multiplies them by the same
  `weighting.advantage_factor` itself (`trainer.TokenShiftTrainer._compute_advantage`). Called by
  verl's dispatcher (verl's own trainer), the estimator gets no per-token tensors and refuses any
  weighting that needs them.
- The weighting options reach Ray workers, where the policy loss runs, by one route: JSON in the
  SPARSE_RLVR_WEIGHTING variable of the Ray runtime environment (`config.PluginConfig.ray_env_vars`),
  read by `config.worker_weighting`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from verl.protocol import DataProto
from verl.trainer.ppo import core_algos

from sparse_rlvr.training.config import ESTIMATOR_NAME, worker_weighting
from sparse_rlvr.training.weighting import WeightingConfig, advantage_factor, divergence_weights, k3_kl


@core_algos.register_adv_est(ESTIMATOR_NAME)
def compute_divergence_weighted_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    divergence: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    weighting: WeightingConfig | None = None,
    batch_keys: list[str] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A~ = w * A (times a token mask if configured); returns (advantages, returns) like every verl estimator.

    Args:
        token_level_rewards, response_mask, index, config: as verl passes every estimator.
        divergence: [B, T] the configured D (JS or KL against the reference, sparse_rlvr's exact pass).
        entropy: [B, T] the policy entropy, for the entropy mask.
        weighting: the options; None reads them from WEIGHTING_ENV (verl's dispatcher passes none).
        batch_keys: verl V1's TransferQueue keys ("{uid}_{session}_{index}"); with them GRPO groups
            agent-loop sessions the way verl's V1 trainer does (final output of each session).
    """
    weighting = weighting or worker_weighting()
    if weighting.estimator == core_algos.AdvantageEstimator.GRPO.value and batch_keys is not None and index is not None:
        advantages, returns = _grpo_over_sessions(token_level_rewards, response_mask, index, config, batch_keys)
    else:
        advantages, returns = _inner_advantages(weighting.estimator, token_level_rewards, response_mask, index, config, kwargs)
    factor = advantage_factor(weighting, response_mask, divergence=divergence, entropy=entropy)
    return (advantages if factor is None else advantages * factor), returns


@core_algos.register_policy_loss(ESTIMATOR_NAME)
def compute_policy_loss_divergence_weighted(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """verl's vanilla clipped loss with A~ = w(D) * A, D = k3 KL(pi_old || pi_theta) per token, detached."""
    weighting = worker_weighting()
    divergence = k3_kl(old_log_prob, log_prob).detach()
    weights = divergence_weights(divergence, weighting.scale, weighting.alpha)
    loss, metrics = core_algos.compute_policy_loss_vanilla(
        old_log_prob, log_prob, advantages * weights, response_mask, loss_agg_mode, config, rollout_is_weights
    )
    valid = response_mask.bool()
    metrics["sparse_rlvr/loss_weight_mean"] = weights[valid].mean().item() if valid.any() else 1.0
    return loss, metrics


def _inner_advantages(
    name: str, token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """The registered estimator `name`, called with the arguments its signature takes."""
    inner = core_algos.get_adv_estimator_fn(name)
    inner_kwargs = dict(token_level_rewards=token_level_rewards, response_mask=response_mask, config=config, **kwargs)
    if index is not None:
        inner_kwargs["index"] = index
    parameters = inspect.signature(inner).parameters
    if "norm_adv_by_std_in_grpo" in parameters and config is not None:
        inner_kwargs["norm_adv_by_std_in_grpo"] = config.get("norm_adv_by_std_in_grpo", True)
    return inner(**{k: v for k, v in inner_kwargs.items() if k in parameters or _takes_kwargs(parameters)})


def _grpo_over_sessions(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any, batch_keys: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO exactly as verl's V1 trainer computes it (its own function): per-session final outputs form
    the groups, and each session's score goes to all its outputs. Single-turn: plain GRPO."""
    # imported here: verl's v1 trainer modules load verl's plugins, which import this module
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    if len(batch_keys) != len(response_mask):
        raise ValueError(f"{len(batch_keys)} batch keys for {len(response_mask)} rows: rows must align")
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_level_rewards, "response_mask": response_mask},
        non_tensors={"uid": np.asarray(index, dtype=object)},
    )
    norm_by_std = config.get("norm_adv_by_std_in_grpo", True) if config is not None else True
    data = compute_advantage_for_multi_trajectories(
        data, batch_keys=list(batch_keys), adv_estimator=core_algos.AdvantageEstimator.GRPO,
        norm_adv_by_std_in_grpo=norm_by_std, config=config,
    )
    return data.batch["advantages"], data.batch["returns"]


def _takes_kwargs(parameters: Any) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def register_algorithms() -> dict[str, str]:
    """Importing this module registered both; report what is in verl's registries."""
    assert core_algos.get_adv_estimator_fn(ESTIMATOR_NAME) is compute_divergence_weighted_advantage
    assert core_algos.get_policy_loss_fn(ESTIMATOR_NAME) is compute_policy_loss_divergence_weighted
    return {ESTIMATOR_NAME: "adv_estimator", f"{ESTIMATOR_NAME} (loss)": "policy_loss"}
