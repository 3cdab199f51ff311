"""A CPU platform for verl 0.9.1: device "cpu", gloo collectives, FSDP2 engines registered for it.

verl resolves its device through ``verl.plugin.platform.get_platform()`` and picks training
engines from ``EngineRegistry`` by device name. It ships only cuda/npu/rocm platforms, and on
a machine with no accelerator it silently falls back to "cuda". This module adds:

- ``PlatformCPU``, registered as ``PlatformRegistry["cpu"]``: device "cpu", backend gloo,
  no-op memory/stream/profiler calls. It keeps ``ray_resource_name() == "GPU"`` so that verl's
  resource pools (which count GPUs) schedule one worker per *fake* GPU
  (``ray_kwargs.ray_init.num_gpus``): on CPU a "GPU" is just a worker slot.
- verl's FSDP/FSDP2 language-model and value-model engines registered for device "cpu";
- plain gloo process groups and unpinned CPU offload (two verl functions replaced; both live in
  ``verl_internals`` with the other verl internals we touch).

``activate_cpu_platform()`` does both and makes the CPU platform current with
``set_platform``. It is called only when ``SPARSE_RLVR_DEVICE=cpu`` (see ``registered_backends``),
so nothing changes on a GPU cluster.
"""

from __future__ import annotations

import contextlib
import logging
import types
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformRegistry, set_platform
from verl.plugin.platform.platform_base import PlatformBase

from sparse_rlvr.training.verl_glue.verl_internals import (
    force_gloo_process_group,
    register_engine_for_device,
    unpinned_cpu_offload,
)

logger = logging.getLogger("sparse_rlvr.training.verl_glue.cpu_platform")


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _CPUDeviceModule(types.SimpleNamespace):
    """Stands in for ``torch.cuda`` where verl calls ``get_torch_device().<fn>()``.

    Memory queries return 0 (verl only logs them); everything else is a no-op unless
    ``torch.cpu`` has it.
    """

    def __getattr__(self, name: str) -> Any:
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        if name in {"memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"}:
            return lambda *a, **k: 0
        if name == "mem_get_info":
            return lambda *a, **k: (0, 0)
        if name == "manual_seed" or name == "manual_seed_all":
            return lambda seed: torch.manual_seed(seed)
        if name == "is_available":
            return lambda: True
        if name == "get_device_name":
            return lambda *a, **k: "CPU"  # verl's flops counter matches device names
        return _noop


CPU_DEVICE_MODULE = _CPUDeviceModule()


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """verl platform for CPU-only machines: torch device "cpu", gloo for every collective."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return CPU_DEVICE_MODULE  # type: ignore[return-value]

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: a GPU machine must not pick CPU; it is chosen explicitly.
        return False

    def current_device(self) -> torch.device:  # type: ignore[override]
        # verl calls ``tensor.to(get_device_id())``; an int 0 would mean cuda:0.
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"  # fake GPUs are worker slots: verl's resource pools count "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def _register_cpu_engines() -> None:
    """Register verl's FSDP engines for device "cpu" (verl registers them for cuda/npu only)."""
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    for model_type, engine in (("language_model", FSDPEngineWithLMHead), ("value_model", FSDPEngineWithValueHead)):
        for backend in ("fsdp", "fsdp2"):
            register_engine_for_device(model_type, backend, "cpu", engine)


def activate_cpu_platform() -> dict[str, str]:
    """Make CPU verl's current platform in this process; returns what was registered."""
    set_platform(PlatformCPU())
    _register_cpu_engines()
    force_gloo_process_group()  # verl would ask for "cpu:gloo,cpu:gloo"
    unpinned_cpu_offload()  # the reference engine's CPU offload pins memory, which needs an accelerator
    return {"cpu": "verl.plugin.platform.PlatformRegistry", "fsdp2@cpu": "verl.workers.engine.EngineRegistry"}
