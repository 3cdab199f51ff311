"""Shared fixtures: tiny models and tokenizer built in code (no hub), fresh for every test."""

from __future__ import annotations

import os

# Two xdist workers (pyproject's addopts) and the processes their runs start share 2 cores: OpenMP
# threads that spin while they wait for work take the cores from the other worker's processes.
# Set before torch is imported here, so the workers, their Ray clusters and subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from sparse_rlvr.workflows.tiny_models import tiny_pair as build_tiny_pair  # noqa: E402


@pytest.fixture
def tiny_pair():
    """(base, policy, tokenizer): same tokenizer, different weights; built in ~0.05 s."""
    return build_tiny_pair(seed=0)


@pytest.fixture
def local_ray(monkeypatch):
    """A real local Ray cluster of 2 CPUs for one test, always shut down afterwards."""
    import shutil
    import tempfile

    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def pytest_collection_modifyitems(session, config, items) -> None:
    """Files with end-to-end (slow) tests first, the longest known first, so that two xdist workers
    finish together instead of one starting a 7-minute run after the other has run dry."""
    longest_first = ("test_demo_on_cpu.py", "test_vllm_lane_on_cpu.py", "test_token_shift_training_on_cpu.py",
                     "test_verl_trainer_on_cpu.py")
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple[int, int]:
        if item.path.name in longest_first:
            return (0, longest_first.index(item.path.name))
        return (1, 0) if item.path in slow_files else (2, 0)

    items.sort(key=rank)  # stable: the order within a file, and among the rest, is kept
