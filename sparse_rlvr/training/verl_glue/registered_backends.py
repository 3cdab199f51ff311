"""Register sparse_rlvr's training components in verl: the ``hf`` rollout and, on request, CPU.

Device selection (how a CPU run is asked for):
    ``SPARSE_RLVR_DEVICE=cpu`` in the environment of *every* process. Our CPU recipes put it in
    ``ray_kwargs.ray_init.runtime_env.env_vars`` (so each Ray worker sees it before it imports
    verl) and ``sparse_rlvr.training.verl_glue.launch`` sets it in the driver. Unset (the default on a
    GPU cluster) nothing device-related changes: only the ``hf`` rollout name is added.

Hook:
    ``register_training_components()`` is meant to be called from ``sparse_rlvr.plugin``
    (entry point group ``verl.plugins``, imported by ``import verl`` in every process). Until it
    is, ``VERL_USE_EXTERNAL_MODULES=sparse_rlvr.training.verl_glue.registered_backends`` works too: importing
    this module calls ``register_training_components()`` once.
"""

from __future__ import annotations

import logging
import os

from sparse_rlvr.training.verl_glue.verl_internals import SUPPORTED_VERL

logger = logging.getLogger("sparse_rlvr.training.verl_glue.registered_backends")

DEVICE_ENV = "SPARSE_RLVR_DEVICE"
_DONE: dict[str, str] = {}


def requested_device() -> str | None:
    """The device asked for through ``SPARSE_RLVR_DEVICE`` ("cpu"), or None."""
    value = os.environ.get(DEVICE_ENV, "").strip().lower()
    if value not in ("", "cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={value!r}: expected 'cpu' or unset")
    return value or None


def check_verl_version() -> None:
    """Fail loudly on a verl whose internals we have not checked (``verl_internals.INTERNALS``)."""
    import verl

    if verl.__version__ != SUPPORTED_VERL:
        raise RuntimeError(
            f"sparse_rlvr's CPU platform and hf rollout are built against verl {SUPPORTED_VERL}, "
            f"found {verl.__version__}; pin verl=={SUPPORTED_VERL}, or port sparse_rlvr/training/verl_glue/verl_internals.py "
            "(every private verl name sparse_rlvr uses, each with a check the canary test runs)"
        )


def _load_hf_replica() -> type:
    """Lazy loader, as verl's own: importing hf_rollout here would be circular inside ``import verl``."""
    from sparse_rlvr.training.verl_glue.hf_rollout import HFReplica

    return HFReplica


def register_hf_rollout() -> dict[str, str]:
    """Add backend ``hf`` to verl's two rollout registries (replica and in-worker adapter)."""
    from verl.workers.rollout import replica

    from sparse_rlvr.training.verl_glue.verl_internals import register_rollout_adapter

    replica.RolloutReplicaRegistry.register("hf", _load_hf_replica)
    register_rollout_adapter("hf", "async", "sparse_rlvr.training.verl_glue.hf_rollout.HFServerAdapter")
    return {"hf": "verl.workers.rollout.replica.RolloutReplicaRegistry", "hf/async": "verl.workers.rollout.base._ROLLOUT_REGISTRY"}


def _load_seeded_vllm_replica() -> type:
    """Lazy loader of the CPU lane's vLLM replica (imports vLLM only when a run uses it)."""
    from sparse_rlvr.training.verl_glue.vllm_cpu_server import SeededvLLMReplica

    return SeededvLLMReplica


def register_cpu_vllm_rollout() -> dict[str, str]:
    """On CPU with the vLLM lane installed, ``vllm`` is verl's replica with per-request seeds (``vllm_cpu_server``)."""
    from verl.workers.rollout import replica

    from sparse_rlvr.training.verl_glue.vllm_cpu_lane import vllm_cpu_missing

    if vllm_cpu_missing() is not None:
        return {}
    replica.RolloutReplicaRegistry.register("vllm", _load_seeded_vllm_replica)
    return {"vllm (CPU lane, seeded requests)": "verl.workers.rollout.replica.RolloutReplicaRegistry"}


def register_training_components() -> dict[str, str]:
    """Register everything once per process; returns {component: verl registry}."""
    if _DONE:
        return dict(_DONE)
    check_verl_version()
    registered = register_hf_rollout()
    from sparse_rlvr.training.verl_glue.benchmark_forward_counter import install_forward_counter

    if install_forward_counter():
        registered["forward counter"] = "torch global forward hook (SPARSE_RLVR_COUNT_FORWARDS)"
    if requested_device() == "cpu":
        from sparse_rlvr.training.verl_glue.cpu_platform import activate_cpu_platform

        registered |= activate_cpu_platform()
        registered |= register_cpu_vllm_rollout()
    _DONE.update(registered)
    logger.info("sparse_rlvr training components registered in verl: %s", registered)
    return dict(registered)


if os.environ.get(DEVICE_ENV) or "sparse_rlvr.training.verl_glue.registered_backends" in os.environ.get("VERL_USE_EXTERNAL_MODULES", ""):
    register_training_components()
