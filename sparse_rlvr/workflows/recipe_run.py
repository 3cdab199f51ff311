"""Run a recipe in a fresh subprocess with its own Ray cluster, and read back its per-step metrics.

Used by the end-to-end tests and benchmarks/monitor_overhead.py. verl's ``run_ppo`` starts and
owns a local Ray cluster, which dies with the process; this checks that none of its processes
outlive it (and kills any that do, reporting them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RecipeRun:
    """What one run left behind."""

    returncode: int
    wall_s: float
    records: list[dict]
    """verl's file logger lines: {"step": n, "data": {metric: value}} per step."""
    log: str
    leftovers: list[int]
    """PIDs of the run's Ray processes still alive after it ended (killed since)."""


def run_recipe(
    config_name: str, overrides: list[str], tiny_dir: Path, run_dir: Path, timeout_s: float = 600,
    env: dict[str, str] | None = None,
) -> RecipeRun:
    """`python -m sparse_rlvr.train --config-name NAME overrides...` with tiny-recipe paths under `run_dir`."""
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray socket paths must stay < 108 bytes
    full_env = os.environ | {
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": ray_tmp,
        "SPARSE_RLVR_TINY_DIR": str(tiny_dir),
        "SPARSE_RLVR_RUN_DIR": str(run_dir),
        "VERL_FILE_LOGGER_ROOT": str(run_dir / "metrics"),
        "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled"),
    } | (env or {})
    command = [sys.executable, "-m", "sparse_rlvr.train", "--config-name", config_name, *overrides]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        log, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        log += f"\n[recipe_run] killed after {timeout_s} s"
    finally:
        leftovers = _wait_gone(ray_tmp)
    wall = time.perf_counter() - start
    return RecipeRun(process.returncode, wall, _records(run_dir, config_name, overrides), log, leftovers)


def _records(run_dir: Path, config_name: str, overrides: list[str]) -> list[dict]:
    names = [o.split("=", 1)[1] for o in overrides if o.startswith("trainer.experiment_name=")]
    projects = [o.split("=", 1)[1] for o in overrides if o.startswith("trainer.project_name=")]
    path = run_dir / "metrics" / (projects[-1] if projects else "sparse_rlvr_tiny") / f"{names[-1] if names else config_name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _ray_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions `marker` (the run's private Ray temp dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _wait_gone(marker: str, seconds: float = 15.0) -> list[int]:
    """Give Ray's processes time to exit with their driver; kill and report any that stay."""
    deadline = time.monotonic() + seconds
    while (pids := _ray_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids
