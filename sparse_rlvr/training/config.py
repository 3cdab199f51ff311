"""The run's validated `sparse_rlvr` config section (sparse_rlvr/recipes/_sparse_rlvr_defaults.yaml).

verl's own dataclass configs reject keys they do not know, so sparse_rlvr's options live in a
top-level section of the run config, validated here (`PluginConfig`, `check_run_config`) by the
launcher before Ray starts and again by the trainer.

How the weighting reaches the code that applies it:
- the advantage-time weighting (`algorithm.adv_estimator=divergence_weighted`) runs in the trainer,
  which reads `PluginConfig.weighting` from the run config and passes it explicitly;
- the loss-time weighting (`actor_rollout_ref.actor.policy_loss.loss_mode=divergence_weighted`)
  runs inside the Ray actor workers, where verl hands the loss only its own actor config. The one
  route there is JSON of the `WeightingConfig` in the SPARSE_RLVR_WEIGHTING environment variable
  (WEIGHTING_ENV), which the launcher puts in ``ray_kwargs.ray_init.runtime_env.env_vars``
  (`PluginConfig.ray_env_vars`), so every Ray process of the run sees it, and which
  `worker_weighting` reads. The trainer refuses to start when that variable disagrees with the
  config (`check_worker_weighting`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from sparse_rlvr.training.weighting import WeightingConfig

WEIGHTING_ENV = "SPARSE_RLVR_WEIGHTING"
ESTIMATOR_NAME = "divergence_weighted"
"""The name of sparse_rlvr's advantage estimator and policy loss in verl's registries."""


@dataclass(frozen=True)
class MonitorConfig:
    """What the token-shift monitor computes and logs."""

    chunk_tokens: int | None = field(default=None, metadata={"help": "Rows per chunk of the exact divergence (its extra memory is ~7 x chunk x vocab floats); None: 64 MB per buffer on GPUs (~110 rows at V = 152k), the core's cache-sized default on CPU."})
    histogram_bins: int = field(default=64, metadata={"help": "Bins of token_shift/js_histogram (W&B allows at most 512)."})
    heatmap_freq: int = field(default=10, metadata={"help": "Every this many steps a W&B table of token heatmaps; 0 = never."})
    heatmap_samples: int = field(default=4, metadata={"help": "Responses per heatmap table."})
    logging_board_dir: str | None = field(default=None, metadata={"help": "If set, per-step JSONL in the RL Logging Board schema plus the divergence fields."})

    def __post_init__(self) -> None:
        if self.chunk_tokens is not None and self.chunk_tokens < 1:
            raise ValueError(f"sparse_rlvr.monitor.chunk_tokens must be >= 1 or null (default), got {self.chunk_tokens}")
        if not 1 <= self.histogram_bins <= 512:
            raise ValueError(f"sparse_rlvr.monitor.histogram_bins must be in [1, 512] (W&B's limit), got {self.histogram_bins}")
        if self.heatmap_freq < 0:
            raise ValueError(f"sparse_rlvr.monitor.heatmap_freq must be >= 0 (0 = never), got {self.heatmap_freq}")
        if self.heatmap_samples < 1:
            raise ValueError(f"sparse_rlvr.monitor.heatmap_samples must be >= 1, got {self.heatmap_samples}")


@dataclass(frozen=True)
class PluginConfig:
    """The whole `sparse_rlvr` section."""

    enable: bool = field(default=True, metadata={"help": "Single exact pass in the workers (no extra forward) and the token_shift/ monitor."})
    weighting: WeightingConfig = field(default_factory=WeightingConfig, metadata={"help": "Divergence weighting of advantages (sparse_rlvr.weighting.*, see WeightingConfig)."})
    monitor: MonitorConfig = field(default_factory=MonitorConfig, metadata={"help": "What the token-shift monitor logs (sparse_rlvr.monitor.*, see MonitorConfig)."})

    @classmethod
    def from_config(cls, section: Any | None) -> PluginConfig:
        """From the run config's `sparse_rlvr` section (a DictConfig or dict); None gives the defaults.

        Unknown keys and out-of-range values raise ValueError naming the key and what is allowed.
        """
        if section is None:
            return cls()
        data = _plain(section)
        unknown = set(data) - {"enable", "weighting", "monitor"}
        if unknown:
            raise ValueError(f"unknown sparse_rlvr option(s) {sorted(unknown)}; valid: enable, weighting.*, monitor.*")
        monitor = data.get("monitor") or {}
        bad = set(monitor) - set(MonitorConfig.__dataclass_fields__)
        if bad:
            raise ValueError(f"unknown sparse_rlvr.monitor option(s) {sorted(bad)}; valid: {sorted(MonitorConfig.__dataclass_fields__)}")
        return cls(
            enable=bool(data.get("enable", True)),
            weighting=WeightingConfig.from_mapping(data.get("weighting")),
            monitor=MonitorConfig(**monitor),
        )

    def ray_env_vars(self) -> dict[str, str]:
        """Environment for every Ray process of the run: the weighting, for the loss-time variant in the workers."""
        return {WEIGHTING_ENV: json.dumps(asdict(self.weighting))}


def worker_weighting() -> WeightingConfig:
    """The weighting handed to this process through WEIGHTING_ENV (weighting off when the variable is unset)."""
    raw = os.environ.get(WEIGHTING_ENV)
    return WeightingConfig.from_mapping(json.loads(raw)) if raw else WeightingConfig()


def check_worker_weighting(config: Any, plugin: PluginConfig) -> None:
    """The loss-time variant reads WEIGHTING_ENV in the workers: refuse a run whose variable (shared by
    every Ray process of the run, this one included) says something else than its config."""
    loss_mode = config.actor_rollout_ref.actor.policy_loss.get("loss_mode", "vanilla")
    if loss_mode == ESTIMATOR_NAME and worker_weighting() != plugin.weighting:
        raise ValueError(
            f"the workers' {WEIGHTING_ENV} gives {worker_weighting()} but sparse_rlvr.weighting is {plugin.weighting}: "
            "launch with `sparse-rlvr train` or `python -m sparse_rlvr.train`, which put the config's weighting in "
            "ray_kwargs.ray_init.runtime_env.env_vars"
        )


def _plain(section: Any) -> dict:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(section, DictConfig):
            return OmegaConf.to_container(section, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf comes with verl
        pass
    return dict(section)


def check_run_config(config: Any, plugin: PluginConfig) -> None:
    """Refuse weighting that nothing would apply, that would apply twice, or options the chosen variant ignores."""
    weighting = plugin.weighting
    uses_weighting = weighting.scale != 0 or weighting.mask != "none"
    estimator = config.algorithm.adv_estimator
    loss_mode = config.actor_rollout_ref.actor.policy_loss.get("loss_mode", "vanilla")
    if estimator == ESTIMATOR_NAME and loss_mode == ESTIMATOR_NAME:
        raise ValueError(
            f"algorithm.adv_estimator={ESTIMATOR_NAME} and actor_rollout_ref.actor.policy_loss.loss_mode={ESTIMATOR_NAME} "
            "would both weight the same advantages (twice): pick one. For the loss-time variant set "
            f"algorithm.adv_estimator={weighting.estimator}; for the advantage-time one set "
            "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"
        )
    if weighting.estimator == ESTIMATOR_NAME:
        raise ValueError(
            f"sparse_rlvr.weighting.estimator={ESTIMATOR_NAME} would weight its own advantages: name the outcome "
            "estimator whose advantages are weighted (grpo, rloo, ...)"
        )
    if loss_mode == ESTIMATOR_NAME:
        _check_loss_time_options(weighting)
    if uses_weighting and estimator != ESTIMATOR_NAME and loss_mode != ESTIMATOR_NAME:
        raise ValueError(
            f"sparse_rlvr.weighting is set (scale={weighting.scale}, mask={weighting.mask}) but nothing reads it: "
            f"set algorithm.adv_estimator={ESTIMATOR_NAME} (or actor_rollout_ref.actor.policy_loss.loss_mode={ESTIMATOR_NAME})"
        )
    if plugin.enable:
        _check_single_pass_supported(config)
    if estimator == ESTIMATOR_NAME and not plugin.enable and (weighting.scale != 0 or weighting.mask == "divergence"):
        raise ValueError(
            f"algorithm.adv_estimator={ESTIMATOR_NAME} with weighting needs the per-token divergence from the single "
            "pass: set sparse_rlvr.enable=true"
        )


def _check_loss_time_options(weighting: WeightingConfig) -> None:
    """The loss-time variant weights by KL(pi_old || pi_theta) with no mask and no estimator of its own."""
    defaults = WeightingConfig()
    ignored = [
        f"sparse_rlvr.weighting.{name}={getattr(weighting, name)} (set {getattr(defaults, name)})"
        for name in ("source", "mask", "estimator")
        if getattr(weighting, name) != getattr(defaults, name)
    ]
    if ignored:
        raise ValueError(
            f"actor_rollout_ref.actor.policy_loss.loss_mode={ESTIMATOR_NAME} weights every token by KL(pi_old || pi_theta) "
            f"inside the update, so it ignores: {', '.join(ignored)}. For divergence sources, token masks or another "
            f"estimator use algorithm.adv_estimator={ESTIMATOR_NAME} with loss_mode=vanilla"
        )


def _check_single_pass_supported(config: Any) -> None:
    """What the single pass cannot do, refused before the first rollout rather than at the first step."""
    arr = config.actor_rollout_ref
    problems = []
    for role in ("actor", "ref"):
        if arr[role].strategy not in ("fsdp", "fsdp2"):
            problems.append(f"actor_rollout_ref.{role}.strategy={arr[role].strategy}: the single pass runs on verl's FSDP engines")
    if arr.model.get("use_fused_kernels", False):
        problems.append(
            "actor_rollout_ref.model.use_fused_kernels=true: fused kernels never build the logits the pass compares, and "
            "they skip the lm_head forward that cuts the padded vocabulary rows the rollout never samples; set "
            "actor_rollout_ref.model.use_fused_kernels=false"
        )
    correction = config.algorithm.get("rollout_correction", None)
    if correction and correction.get("bypass_mode", False):
        problems.append("algorithm.rollout_correction.bypass_mode=true: it skips the old-log-prob pass the single pass replaces")
    if config.trainer.get("v1", {}).get("trainer_mode", "sync") != "sync":
        problems.append(f"trainer.v1.trainer_mode={config.trainer.v1.trainer_mode}: the plugin extends verl's synchronous trainer")
    if problems:
        raise ValueError("sparse_rlvr.enable=true cannot run with:\n  " + "\n  ".join(problems) + "\n(or set sparse_rlvr.enable=false)")
