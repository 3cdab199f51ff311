"""verl registrations of the divergence-weighted advantage estimator and policy loss.

Importing this module registers, in verl's own registries:
- `algorithm.adv_estimator=divergence_weighted`: the named outcome estimator's advantages (GRPO
  by default) times divergence weights, optionally restricted to a top-rho token mask;
- `actor.policy_loss.loss_mode=divergence_weighted`: the loss-time variant, weights from the
  per-token KL(pi_old || pi_theta) inside the update, then verl's vanilla clipped loss.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from verl.protocol import DataProto
from verl.trainer.ppo import core_algos

from sparse_rlvr.training.config import ESTIMATOR_NAME, WEIGHTING_ENV
from sparse_rlvr.training.weighting import WeightingConfig, divergence_weights, k3_kl, top_fraction_mask

ESTIMATOR = ESTIMATOR_NAME
POLICY_LOSS = ESTIMATOR_NAME


def active_weighting() -> WeightingConfig:
    """The run's weighting options, from WEIGHTING_ENV (weighting off when the variable is unset).

    verl's dataclass configs (AlgoConfig, PolicyLossConfig) reject keys they do not know, so the
    driver validates our own top-level `sparse_rlvr` section and hands the weighting to every Ray
    worker through this variable of the runtime environment.
    """
    raw = os.environ.get(WEIGHTING_ENV)
    return WeightingConfig.from_mapping(json.loads(raw)) if raw else WeightingConfig()


@dataclass
class StepTokens:
    """Per-token tensors of the batch whose advantages are being computed ([B, T], rows as verl's)."""

    divergence: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    batch_keys: list[str] | None = None
    """verl V1's TransferQueue keys ("{uid}_{session}_{index}"): with them GRPO groups agent-loop
    sessions the way verl's V1 trainer does (final output of each session, broadcast to the rest)."""


_STEP: StepTokens | None = None


@contextmanager
def step_tokens(tokens: StepTokens) -> Iterator[StepTokens]:
    """Make `tokens` the estimator's divergence/entropy while verl's advantage dispatcher runs.

    verl's dispatcher passes an estimator only rewards, mask, uid and config; the trainer wraps
    its call in this context so the registered estimator finds the step's per-token tensors.
    """
    global _STEP
    previous, _STEP = _STEP, tokens
    try:
        yield tokens
    finally:
        _STEP = previous


@core_algos.register_adv_est(ESTIMATOR)
def compute_divergence_weighted_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    divergence: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    weighting: WeightingConfig | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A~ = w * A (times a token mask if configured); returns (advantages, returns) like every verl estimator.

    `divergence` [B, T] is the configured D (JS or KL against the reference, from sparse_rlvr's
    exact pass); `entropy` [B, T] the policy entropy, for the entropy mask.
    """
    weighting = weighting or active_weighting()
    if _STEP is not None:
        divergence = _STEP.divergence if divergence is None else divergence
        entropy = _STEP.entropy if entropy is None else entropy
    for name, tensor in (("divergence", divergence), ("entropy", entropy)):
        if tensor is not None and tensor.shape != response_mask.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, the response mask {tuple(response_mask.shape)}: rows must align")
    batch_keys = _STEP.batch_keys if _STEP is not None else None
    if weighting.estimator == core_algos.AdvantageEstimator.GRPO.value and batch_keys is not None and index is not None:
        advantages, returns = _grpo_over_sessions(token_level_rewards, response_mask, index, config, batch_keys)
    else:
        advantages, returns = _inner_advantages(weighting.estimator, token_level_rewards, response_mask, index, config, kwargs)
    needs_divergence = weighting.scale != 0 or weighting.mask == "divergence"
    if needs_divergence and divergence is None:
        raise ValueError(
            "divergence_weighted needs per-token divergences from the reference pass; launch with "
            "`python -m sparse_rlvr.train` (which computes them), or set sparse_rlvr.weighting.scale=0 and sparse_rlvr.weighting.mask=none"
        )
    if weighting.scale != 0:
        advantages = advantages * divergence_weights(divergence, weighting.scale, weighting.alpha)
    if weighting.mask != "none":
        values = divergence if weighting.mask == "divergence" else entropy
        if values is None:
            raise ValueError("sparse_rlvr.weighting.mask=entropy needs the policy entropy per token (old_log_prob pass)")
        advantages = advantages * top_fraction_mask(values, response_mask, weighting.rho)
    return advantages, returns


@core_algos.register_policy_loss(POLICY_LOSS)
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
    weighting = active_weighting()
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
    assert core_algos.get_adv_estimator_fn(ESTIMATOR) is compute_divergence_weighted_advantage
    assert core_algos.get_policy_loss_fn(POLICY_LOSS) is compute_policy_loss_divergence_weighted
    return {ESTIMATOR: "adv_estimator", f"{POLICY_LOSS} (loss)": "policy_loss"}
