"""verl reward-loop manager ``sparse_rlvr_math``: our math verifier plus DAPO's overlong penalty.

Select it with ``reward.reward_manager.name=sparse_rlvr_math`` (source ``register``, the default).
Settings: ``reward.reward_kwargs.sparse_rlvr_math`` holds :class:`MathRewardConfig` fields;
``reward.reward_kwargs.overlong_buffer_cfg`` / ``max_resp_len`` work as in verl's ``dapo`` manager.

verl calls :meth:`run_single` concurrently for the items of a batch; each call scores in a thread
that checks out one worker of the shared process pool, so a batch spreads over all workers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score


def overlong_penalty(valid_length: int, max_resp_len: int, buffer_len: int, penalty_factor: float) -> float:
    """DAPO's soft overlong punishment: 0 up to ``max_resp_len - buffer_len``, then linear to -factor."""
    exceed = valid_length - (max_resp_len - buffer_len)
    return min(-exceed / buffer_len * penalty_factor, 0.0)


def _build_manager_class() -> type:
    """Define and register the manager (verl imported lazily: this module is loaded by the plugin)."""
    from verl.experimental.reward_loop.reward_manager import register
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

    @register("sparse_rlvr_math")
    class SparseRLVRMathRewardManager(RewardManagerBase):
        """Overrides only ``run_single`` (verl's per-item hook); the rest is RewardManagerBase."""

        def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **_: Any) -> None:
            super().__init__(config, tokenizer, compute_score)
            kwargs = config.reward.get("reward_kwargs", {}) or {}
            self.math_config = MathRewardConfig.from_kwargs(dict(kwargs.get("sparse_rlvr_math", {}) or {}))
            self.overlong = kwargs.get("overlong_buffer_cfg", None)
            self.max_resp_len = kwargs.get("max_resp_len", None)
            if self.overlong is not None and self.overlong.enable and not self.max_resp_len:
                raise ValueError("reward.reward_kwargs.max_resp_len must be set when overlong_buffer_cfg.enable")

        async def run_single(self, data: Any) -> dict:
            item = data[-1:][0]
            response_ids = item.batch["responses"]
            valid_len = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
            text = self.tokenizer.decode(response_ids[:valid_len], skip_special_tokens=True)
            gold = item.non_tensor_batch["reward_model"]["ground_truth"]
            extra = item.non_tensor_batch.get("extra_info", {})
            source = item.non_tensor_batch.get("data_source", "")
            # the running loop, not self.loop: the manager may be built outside the loop it serves
            result = await asyncio.get_running_loop().run_in_executor(
                None, lambda: compute_score(source, text, gold, extra, config=self.math_config)
            )
            reward = float(result["score"])
            if self.overlong is not None and self.overlong.enable:
                penalty = overlong_penalty(valid_len, self.max_resp_len, self.overlong.len, self.overlong.penalty_factor)
                reward += penalty
                result = {**result, "overlong_reward": penalty, "overlong": penalty < 0}
            return {"reward_score": reward, "reward_extra_info": result}

    return SparseRLVRMathRewardManager


_MANAGER: type | None = None


def register_reward_manager() -> dict[str, str]:
    """Register ``sparse_rlvr_math`` in verl's reward-loop registry (idempotent)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = _build_manager_class()
    return {"sparse_rlvr_math": "reward_manager"}
