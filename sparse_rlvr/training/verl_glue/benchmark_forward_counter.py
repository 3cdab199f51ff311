"""Count the training workers' model forwards, for benchmarks/monitor_overhead.py ("0 extra forwards").

With SPARSE_RLVR_COUNT_FORWARDS=DIR in every process's environment, each process appends one
line per forward of a top-level causal LM (a `*ForCausalLM` module) to DIR/<pid>.txt:
"grad" or "no_grad". The hf rollout marks its generation model as not counted: decoding is
not a training forward and is the same with the plugin on or off.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

COUNT_ENV = "SPARSE_RLVR_COUNT_FORWARDS"
NOT_COUNTED = "_sparse_rlvr_not_counted"
_INSTALLED: list[object] = []


def install_forward_counter() -> bool:
    """Install the global forward hook if COUNT_ENV is set (once per process); returns whether it is on."""
    directory = os.environ.get(COUNT_ENV)
    if not directory or _INSTALLED:
        return bool(_INSTALLED)
    path = Path(directory) / f"{os.getpid()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)

    def count(module: torch.nn.Module, args: object, output: object) -> None:
        if type(module).__name__.endswith("ForCausalLM") and not getattr(module, NOT_COUNTED, False):
            with open(path, "a") as file:
                file.write("grad\n" if torch.is_grad_enabled() else "no_grad\n")

    _INSTALLED.append(torch.nn.modules.module.register_module_forward_hook(count))
    return True


def read_forward_counts(directory: str | Path) -> dict[str, int]:
    """{"grad": n, "no_grad": m} summed over every process that wrote to `directory`."""
    counts = {"grad": 0, "no_grad": 0}
    for file in Path(directory).glob("*.txt"):
        for line in file.read_text().split():
            counts[line] += 1
    return counts
