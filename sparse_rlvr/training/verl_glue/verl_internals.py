"""Every non-public verl 0.9.1 name sparse_rlvr touches, reached from here and nowhere else.

verl's public extension points (``register_adv_est``, ``register_policy_loss``, the reward-manager
and rollout-replica registries, ``PlatformRegistry``, Hydra configs) are used where they are
needed. Everything else we lean on is here: underscore names, attributes that verl's own code
sets and reads, trainer methods we override, functions we replace, and lines of verl's source
whose behaviour we rely on. Each entry of ``INTERNALS`` says who uses it and what breaks if it
moves; the canary test (tests/training/verl_glue/test_registered_backends_on_cpu.py::
test_verl_internals_we_reach_into_are_still_there) runs every entry's check, so a verl upgrade
fails there, by name, before it fails inside a training run. ``registered_backends`` refuses any
verl but ``SUPPORTED_VERL``; porting to a new verl means making every check here pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

SUPPORTED_VERL = "0.9.1"
"""The verl version every entry below was read from and checked against."""

TRAINER_HOOKS = (
    "_init_resource_pool_mgr",
    "_compute_old_log_prob",
    "_compute_ref_log_prob",
    "_compute_advantage",
    "_update_actor",
    "_compute_metrics",
)
"""Private methods of verl's V1 ``PPOTrainer`` that ``trainer.TokenShiftTrainer`` overrides (and calls with super())."""


# --------------------------------------------------------------------------- engine (single pass)


def gather_and_unpad_packed(engine: Any, values: torch.Tensor, pad_size: int) -> torch.Tensor:
    """``FSDPEngineWithLMHead._gather_and_unpad_packed``: undo the sequence-parallel split and the
    padding of remove-padding (packed) per-token values, exactly as verl does for its log-probs."""
    return engine._gather_and_unpad_packed(values, pad_size)


def autocast_dtype(engine: Any) -> torch.dtype:
    """The engine's ``_autocast_dtype`` (its forward's autocast), with verl's own bf16 fallback."""
    return getattr(engine, "_autocast_dtype", torch.bfloat16)


# --------------------------------------------------------------------------- trainer


def task_runner_base() -> type:
    """verl's V1 TaskRunner class itself (``TaskRunnerV1`` is a Ray remote class; Ray keeps the
    class under ``__ray_actor_class__``), for ``trainer.TokenShiftTaskRunner`` to subclass."""
    from verl.trainer.main_ppo import TaskRunnerV1

    return TaskRunnerV1.__ray_actor_class__


@contextmanager
def sync_trainer_is(cls: type) -> Iterator[None]:
    """Within this (TaskRunner) process, verl's ``TRAINER_REGISTRY["sync"]`` builds `cls`.

    ``TaskRunnerV1.run`` builds its trainer from the registry by ``trainer.v1.trainer_mode``;
    registering another name would fail the ``trainer_mode == "sync"`` checks elsewhere in verl.
    """
    from verl.trainer.ppo.v1 import trainer_base

    registry = trainer_base.TRAINER_REGISTRY
    previous = registry["sync"]
    registry["sync"] = cls
    try:
        yield
    finally:
        registry["sync"] = previous


def actor_is_separate(trainer: Any) -> bool:
    """Whether verl's ``_init_resource_pool_mgr`` gave the trainer a separate actor (no hybrid actor+rollout worker)."""
    from verl.trainer.ppo.utils import Role

    return Role.Actor in trainer.role_worker_mapping


def use_actor_worker(trainer: Any, role: Any, worker_class: type) -> None:
    """Make `role` the trainer's only actor role, built from `worker_class` (a Ray remote class).

    verl's ``_init_resource_pool_mgr`` fills ``trainer.role_worker_mapping`` (role -> worker class)
    and ``trainer.mapping`` (role -> resource pool; its ResourcePoolManager holds the same dict).
    """
    from verl.trainer.ppo.utils import Role

    workers, pools = trainer.role_worker_mapping, trainer.mapping
    for old in (Role.ActorRollout, Role.ActorRolloutRef):
        if old in workers and old != role:
            del workers[old]
            pools[role] = pools.pop(old)
    workers[role] = worker_class


def trainer_tracking(trainer: Any) -> Any | None:
    """verl's ``Tracking`` logger of the run (``trainer.logger``, set in ``fit``), or None before fit."""
    return getattr(trainer, "logger", None)


@contextmanager
def verl_advantage_step_uses(algorithm_config: Any, estimator: str) -> Iterator[None]:
    """While verl's V1 ``_compute_advantage`` runs, it dispatches to `estimator`.

    That step reads the estimator's name from ``config.algorithm.adv_estimator`` and gives the
    estimator only rewards, mask, uid and config. sparse_rlvr's trainer lets verl compute the
    inner estimator's advantages exactly as verl does (agent-loop sessions, KL in reward, rollout
    correction) under this name, then weights them itself with explicit per-token tensors.
    """
    previous = algorithm_config.adv_estimator
    algorithm_config.adv_estimator = estimator
    try:
        yield
    finally:
        algorithm_config.adv_estimator = previous


# --------------------------------------------------------------------------- rollout


def register_rollout_adapter(name: str, mode: str, class_path: str) -> None:
    """Add a ``BaseRollout`` to ``verl.workers.rollout.base._ROLLOUT_REGISTRY`` (verl has no public
    register call for it; ``get_rollout_class(name, mode)`` imports `class_path` from there)."""
    from verl.workers.rollout import base

    base._ROLLOUT_REGISTRY[(name, mode)] = class_path


async def worker_node_id(worker: Any) -> str:
    """The Ray node of a worker actor, asked inside that actor (Ray's ``__ray_call__``, as verl's replicas do)."""
    import ray

    return await worker.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())


def set_replica_server(replica: Any, server: Any, address: str) -> None:
    """Hand a launched server to verl's ``RolloutReplica``: its base methods (wake_up, sleep, abort, ...)
    loop over ``servers``; ``server_handle``/``server_address`` read ``_server_handle``/``_server_address``."""
    replica.servers = [server]
    replica._server_handle = server
    replica._server_address = address


# --------------------------------------------------------------------------- CPU platform


def register_engine_for_device(model_type: str, backend: str, device: str, engine: type) -> None:
    """Add `engine` to ``EngineRegistry._engines[model_type][backend][device]`` (verl's decorator
    registers only for the devices it names, cuda and npu)."""
    from verl.workers.engine.base import EngineRegistry

    EngineRegistry._engines.setdefault(model_type, {}).setdefault(backend, {})[device] = engine


def force_gloo_process_group() -> None:
    """Replace ``verl.utils.distributed.initialize_global_process_group_ray`` by one whose backend
    defaults to plain "gloo": verl builds ``f"cpu:gloo,{device}:{backend}"``, which on CPU names cpu twice."""
    import verl.utils.distributed as distributed

    if getattr(distributed, "_sparse_rlvr_cpu", False):
        return
    original = distributed.initialize_global_process_group_ray

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    distributed._sparse_rlvr_cpu = True


def unpinned_cpu_offload() -> None:
    """Replace ``transformer_impl.CPUOffloadPolicy`` by one with ``pin_memory=False``: verl's forward-only
    (reference) FSDP2 engine asks for pinned memory, which needs an accelerator."""
    import verl.workers.engine.fsdp.transformer_impl as transformer_impl

    policy = transformer_impl.CPUOffloadPolicy
    if getattr(policy, "_sparse_rlvr_cpu", False):
        return

    def cpu_offload_policy(pin_memory: bool = True, **kwargs: Any):
        return policy(pin_memory=False, **kwargs)

    cpu_offload_policy._sparse_rlvr_cpu = True  # type: ignore[attr-defined]
    transformer_impl.CPUOffloadPolicy = cpu_offload_policy


# --------------------------------------------------------------------------- the list the canary checks


@dataclass(frozen=True)
class Internal:
    """One verl internal: its name, who uses it, what breaks if it moves, and a check that it is still there."""

    name: str
    used_by: str
    breaks: str
    check: Callable[[], bool]


def _source(obj: Any) -> str:
    return inspect.getsource(obj)


def _ppo_trainer() -> type:
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    return PPOTrainer


def _fsdp_engine() -> type:
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    return FSDPEngineWithLMHead


def _replica() -> type:
    from verl.workers.rollout.replica import RolloutReplica

    return RolloutReplica


def _training_worker() -> type:
    from verl.workers.engine_workers import TrainingWorker

    return TrainingWorker


def _hooks_exist() -> bool:
    trainer = _ppo_trainer()
    for name in TRAINER_HOOKS:
        parameters = list(inspect.signature(getattr(trainer, name)).parameters)
        if name == "_init_resource_pool_mgr":
            assert parameters == ["self"], (name, parameters)
        elif name == "_compute_metrics":
            assert parameters == ["self", "batch", "metrics", "timing_raw", "global_steps", "epoch"], (name, parameters)
        else:
            assert parameters == ["self", "batch", "metrics"], (name, parameters)
    return True


def _trainer_builds_from_registry() -> bool:
    from verl.trainer.main_ppo import TaskRunnerV1
    from verl.trainer.ppo.v1 import trainer_base

    assert "sync" in trainer_base.TRAINER_REGISTRY
    return "get_trainer_cls(config.trainer.v1.trainer_mode)" in _source(TaskRunnerV1.__ray_actor_class__.run) and (
        "return TRAINER_REGISTRY[name]" in _source(trainer_base.get_trainer_cls)
    )


def _pool_mapping() -> bool:
    source = _source(_ppo_trainer()._init_resource_pool_mgr)
    return all(line in source for line in ("self.role_worker_mapping = {}", "self.mapping = {}", "mapping=self.mapping"))


def _advantage_step_reads_config() -> bool:
    source = _source(_ppo_trainer()._compute_advantage)
    return "adv_estimator=self.config.algorithm.adv_estimator" in source and "config=self.config.algorithm" in source


def _rollout_registry() -> bool:
    from verl.workers.rollout import base

    return isinstance(base._ROLLOUT_REGISTRY, dict) and ("vllm", "async") in base._ROLLOUT_REGISTRY and (
        "_ROLLOUT_REGISTRY" in _source(base.get_rollout_class)
    )


def _replica_server_fields() -> bool:
    replica = _replica()
    init, source = _source(replica.__init__), _source(replica)
    assert set(replica.__abstractmethods__) == {"launch_servers"}, replica.__abstractmethods__
    return all(f"self.{name}" in init for name in ("servers", "_server_handle", "_server_address", "workers", "name_suffix")) and (
        "return self._server_handle" in source and "for server in self.servers" in source
    )


def _server_generate_call() -> bool:
    from verl.workers.rollout.llm_server import LLMServerClient

    return "server.generate.remote(" in _source(LLMServerClient.generate)


def _ray_call() -> bool:
    import ray.actor

    return "def __ray_call__(" in _source(ray.actor._modify_class)


def _engine_registry() -> bool:
    from verl.workers.engine.base import EngineRegistry

    return isinstance(EngineRegistry._engines["language_model"]["fsdp2"], dict)


def _process_group_init() -> bool:
    import verl.utils.distributed as distributed
    import verl.workers.engine_workers as engine_workers

    parameters = inspect.signature(distributed.initialize_global_process_group_ray).parameters
    # engine_workers calls it through the module attribute (so the replacement is seen), without a backend
    return "backend" in parameters and "initialize_global_process_group_ray(timeout_second=None)" in _source(engine_workers)


def _offload_policy() -> bool:
    import verl.workers.engine.fsdp.transformer_impl as transformer_impl

    return hasattr(transformer_impl, "CPUOffloadPolicy") and "CPUOffloadPolicy(pin_memory=True)" in _source(transformer_impl)


INTERNALS: tuple[Internal, ...] = (
    Internal(
        "FSDPEngineWithLMHead._gather_and_unpad_packed",
        "single_pass._shift_per_token (remove-padding inputs)",
        "the single pass cannot return per-token shift values aligned with verl's log-probs when inputs are packed",
        lambda: "pad_size" in inspect.signature(_fsdp_engine()._gather_and_unpad_packed).parameters,
    ),
    Internal(
        "FSDPEngineWithLMHead._autocast_dtype",
        "single_pass._autocast (both models' forwards)",
        "the single pass would run the forwards in another precision than verl's own log-prob pass, so s=0 "
        "would no longer equal verl's GRPO bit for bit",
        lambda: "self._autocast_dtype = param_dtype" in _source(_fsdp_engine())
        or "self._autocast_dtype" in _source(inspect.getmodule(_fsdp_engine())),
    ),
    Internal(
        "PPOTrainer." + "/".join(TRAINER_HOOKS),
        "trainer.TokenShiftTrainer (overrides each and calls super())",
        "the worker swap, single pass, explicit weighting, monitor or actor-update field filter silently stop "
        "running (a renamed hook is never called)",
        _hooks_exist,
    ),
    Internal(
        "trainer_base.TRAINER_REGISTRY['sync']",
        "verl_internals.sync_trainer_is (trainer.TokenShiftTaskRunner.run)",
        "verl's TaskRunner builds its own PPOTrainerSync: no single pass, no weighting, no monitor",
        _trainer_builds_from_registry,
    ),
    Internal(
        "TaskRunnerV1.__ray_actor_class__",
        "verl_internals.task_runner_base (trainer.TokenShiftTaskRunner subclasses it)",
        "sparse_rlvr's TaskRunner cannot be defined: `python -m sparse_rlvr.train` fails at import",
        lambda: inspect.isclass(task_runner_base()) and hasattr(task_runner_base(), "run"),
    ),
    Internal(
        "PPOTrainer.role_worker_mapping / PPOTrainer.mapping",
        "verl_internals.actor_is_separate/use_actor_worker (TokenShiftTrainer._init_resource_pool_mgr)",
        "the actor worker stays verl's ActorRolloutRefWorker, which has no single pass",
        _pool_mapping,
    ),
    Internal(
        "PPOTrainer.logger",
        "verl_internals.trainer_tracking (TokenShiftTrainer._log_media)",
        "histograms and heatmap tables are not logged (scalars still are)",
        lambda: "self.logger = Tracking(" in _source(_ppo_trainer().fit),
    ),
    Internal(
        "PPOTrainer._compute_advantage reads config.algorithm.adv_estimator",
        "verl_internals.verl_advantage_step_uses (TokenShiftTrainer._compute_advantage)",
        "verl would dispatch to the registered divergence_weighted estimator without per-token tensors, "
        "which refuses any weighting that needs them",
        _advantage_step_reads_config,
    ),
    Internal(
        "verl.workers.rollout.base._ROLLOUT_REGISTRY",
        "verl_internals.register_rollout_adapter (registered_backends.register_hf_rollout)",
        "`actor_rollout_ref.rollout.name=hf` fails with 'Rollout hf with mode async not found'",
        _rollout_registry,
    ),
    Internal(
        "RolloutReplica.servers/_server_handle/_server_address/workers/name_suffix",
        "verl_internals.set_replica_server, hf_rollout.HFReplica.launch_servers",
        "the hf rollout's server is launched but verl's agent loop and sleep/wake calls cannot reach it",
        _replica_server_fields,
    ),
    Internal(
        "ActorHandle.__ray_call__ (Ray)",
        "verl_internals.worker_node_id (hf_rollout.HFReplica.launch_servers)",
        "the hf server cannot be placed on its workers' node",
        _ray_call,
    ),
    Internal(
        "LLMServerClient.generate calls server.generate.remote(prompt_ids, sampling_params, request_id)",
        "hf_rollout.HFServer.generate (the contract it answers)",
        "verl's agent loop no longer reaches the hf server's generate: rollouts fail or hang",
        _server_generate_call,
    ),
    Internal(
        "EngineRegistry._engines",
        "verl_internals.register_engine_for_device (cpu_platform.activate_cpu_platform)",
        "CPU runs find no training engine for device 'cpu'",
        _engine_registry,
    ),
    Internal(
        "verl.utils.distributed.initialize_global_process_group_ray (replaced)",
        "verl_internals.force_gloo_process_group (cpu_platform.activate_cpu_platform)",
        "CPU workers ask torch for a 'cpu:gloo,cpu:gloo' process group and fail to start",
        _process_group_init,
    ),
    Internal(
        "transformer_impl.CPUOffloadPolicy (replaced)",
        "verl_internals.unpinned_cpu_offload (cpu_platform.activate_cpu_platform)",
        "the CPU reference engine asks for pinned memory and fails without an accelerator",
        _offload_policy,
    ),
    Internal(
        "TrainingWorker.engine.module, TrainingWorker.model_config.tokenizer; FSDPEngineWithLMHead's log-probs from "
        "module(...).logits",
        "actor_worker.cut_to_tokenizer (the lm_head hook that drops padded vocabulary rows)",
        "the actor's log-probs and entropy include padded rows again, unlike the rollout's "
        "(training/rollout_probs_diff grows by log(1 - padded mass))",
        lambda: "self.module" in _source(_fsdp_engine()) and "output.logits" in _source(_fsdp_engine().prepare_model_outputs)
        and "self.engine" in _source(_training_worker()) and "self.model_config" in _source(_training_worker()),
    ),
)
"""The canary test runs every ``check``; each returns True or raises naming what moved."""


def _vllm_server() -> Any:
    from verl.workers.rollout.vllm_rollout import vllm_async_server

    return vllm_async_server


def _worker_extension_internals() -> bool:
    from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver
    from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension as extension
    from verl.workers.rollout.vllm_rollout.weight_update_utils import split_buffer_updates

    names = ("_get_zmq_handle", "_apply_buffer_updates_all_models", "update_weights_from_ipc")
    new_source = _source(extension.__new__)
    return (all(hasattr(extension, name) for name in names)
            and "instance._is_qat_model" in new_source and "instance._is_modelopt_qat" in new_source
            and {"zmq_handle", "device", "use_shm"} <= set(inspect.signature(BucketedWeightReceiver).parameters)
            and "on_bucket_received" in inspect.signature(BucketedWeightReceiver.receive_weights).parameters
            and list(inspect.signature(split_buffer_updates).parameters) == ["model", "weights"])


def _vllm_layerwise_reload() -> bool:
    from vllm.model_executor.model_loader.reload import finalize_layerwise_reload, initialize_layerwise_reload

    return callable(initialize_layerwise_reload) and callable(finalize_layerwise_reload)


VLLM_LANE_INTERNALS: tuple[Internal, ...] = (
    Internal(
        "vLLMHttpServer.generate(prompt_ids, sampling_params, request_id, ...) / .global_steps / .replica_rank",
        "vllm_cpu_server.SeededvLLMHttpServer (seeds each request by step, prompt and k)",
        "requests reach vLLM unseeded (two runs sample differently: s=0 no longer equals plain GRPO) or the server fails",
        lambda: (list(inspect.signature(_vllm_server().vLLMHttpServer.generate).parameters)[1:4]
                 == ["prompt_ids", "sampling_params", "request_id"]
                 and "self.global_steps = global_steps" in _source(_vllm_server().vLLMHttpServer.set_global_steps)
                 and "self.replica_rank" in _source(_vllm_server().vLLMHttpServer)),
    ),
    Internal(
        "vLLMReplica.server_class",
        "vllm_cpu_server.SeededvLLMReplica (serves through the seeded server)",
        "the CPU lane's replica launches verl's unseeded server",
        lambda: "self.server_class = ray.remote(vLLMHttpServer)" in _source(_vllm_server().vLLMReplica.__init__)
        and "self.server_class.options(" in _source(_vllm_server().vLLMReplica.launch_servers),
    ),
    Internal(
        "vLLMColocateWorkerExtension._is_qat_model/_is_modelopt_qat/_get_zmq_handle/_apply_buffer_updates_all_models, "
        "BucketedWeightReceiver, split_buffer_updates",
        "vllm_cpu_worker.CPUColocateWorkerExtension (the CPU lane's weight sync)",
        "weights never reach CPU vLLM after an update (the rollout keeps sampling the first policy) or the sync hangs",
        _worker_extension_internals,
    ),
    Internal(
        "vllm.model_executor.model_loader.reload.{initialize,finalize}_layerwise_reload (vLLM, not verl)",
        "vllm_cpu_worker.CPUColocateWorkerExtension",
        "no way to reload CPU vLLM's packed linear weights in place",
        _vllm_layerwise_reload,
    ),
)
"""What the vLLM CPU lane reaches into; checked by the lane's tests where vLLM is installed."""


def missing_internals(internals: tuple[Internal, ...] | None = None) -> list[str]:
    """Names in `internals` (default INTERNALS) whose check fails in the installed verl, with the reason; [] when all hold."""
    missing = []
    for internal in INTERNALS if internals is None else internals:
        try:
            ok = internal.check()
        except Exception as error:  # a moved module or attribute is the very thing being reported
            missing.append(f"{internal.name}: {error!r} (breaks: {internal.breaks})")
            continue
        if not ok:
            missing.append(f"{internal.name}: not as {SUPPORTED_VERL} had it (breaks: {internal.breaks})")
    return missing
