"""The divergence core's CPU kernel (cpu_kernel.cpp): built on first use for this machine's vector ISA.

torch.compile cannot keep a row in cache across the max, exp-sum and JS passes (each reduction
is its own loop over the whole chunk), so on CPU the row sums come from a small hand-written
kernel (see the .cpp's header); everything cheap after the sums is fused.finish, shared with the
compiled path. The build uses torch.utils.cpp_extension (a C++ compiler and ninja), takes
~11 s (2 cores) once per machine and torch version, and is cached in torch's extension directory
(TORCH_EXTENSIONS_DIR). If it fails, the caller falls back to the torch.compile path, with one
log line.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
KERNEL_ENV = "SPARSE_RLVR_DIVERGENCE_CPU_KERNEL"
"""Set to 0 to skip the hand-written CPU kernel (the torch.compile path then runs on CPU too)."""
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
ISA_FLAGS = {
    # what torch.backends.cpu.get_cpu_capability() reports -> vector flags for ATen's Vectorized<float>
    "AVX512": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mfma"],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
}

_lock = threading.Lock()
_state: dict[str, object] = {}  # "op": the loaded op, or "error": why it could not be built


def applies(base: torch.Tensor, policy: torch.Tensor) -> bool:
    """Whether this chunk can go to the CPU kernel: CPU tensors of one float32/bf16/fp16 dtype."""
    return (
        base.device.type == "cpu" and policy.device.type == "cpu" and base.dtype == policy.dtype
        and base.dtype in DTYPES and os.environ.get(KERNEL_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    )


def usable(base: torch.Tensor, policy: torch.Tensor) -> bool:
    """Whether this chunk goes to the CPU kernel: it applies, and the kernel is built (building it now if need be)."""
    return applies(base, policy) and row_sums_op() is not None


def row_sums_op() -> Callable | None:
    """torch.ops.sparse_rlvr_divergence.row_sums, building it on first call; None if it cannot be built."""
    if "op" in _state or "error" in _state:
        return _state.get("op")  # type: ignore[return-value]
    with _lock:
        if "op" not in _state and "error" not in _state:
            _state.update(_build())
    return _state.get("op")  # type: ignore[return-value]


def build_seconds() -> float | None:
    """Seconds the first row_sums_op() call took to build or load the kernel in this process."""
    return _state.get("build_s")  # type: ignore[return-value]


def vector_isa() -> str:
    """The instruction set the kernel is built for: AVX512, AVX2 or DEFAULT (ATen's scalar Vectorized).

    torch's own CPU capability (ATEN_CPU_CAPABILITY=avx2 or default lowers it, as for ATen's kernels).
    """
    capability = torch.backends.cpu.get_cpu_capability()
    return capability if capability in ISA_FLAGS else "DEFAULT"


def _build() -> dict[str, object]:
    """Compile and load the kernel: {"op", "build_s"} or {"error"} (logged once)."""
    start = time.perf_counter()
    isa = vector_isa()
    flags = ["-O3", "-fopenmp", f"-DCPU_CAPABILITY={isa}", *ISA_FLAGS.get(isa, [])]
    flags += [f"-DCPU_CAPABILITY_{isa}"] if isa != "DEFAULT" else []
    try:
        from torch.utils import cpp_extension

        if shutil.which("ninja") is None:  # pip's ninja lives next to this interpreter, maybe off PATH
            os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        cpp_extension.load(
            name=f"sparse_rlvr_divergence_{isa.lower()}", sources=[str(SOURCE)], extra_cflags=flags,
            extra_ldflags=["-lgomp"], is_python_module=False, verbose=False,
        )
        return {"op": torch.ops.sparse_rlvr_divergence.row_sums, "build_s": time.perf_counter() - start}
    except Exception as error:  # noqa: BLE001 - any build failure means: use the torch.compile path
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        logger.warning(
            "sparse_rlvr: the divergence core's CPU kernel could not be built (%s); using the torch.compile "
            "path instead (same results, slower). It needs a C++ compiler, ninja (pip install ninja) and a writable TORCH_EXTENSIONS_DIR; set "
            "%s=0 to skip it.", reason, KERNEL_ENV,
        )
        return {"error": reason}
