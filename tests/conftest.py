"""Shared fixtures: tiny models and tokenizer built in code (no hub), fresh for every test."""

from __future__ import annotations

import pytest

from sparse_rlvr.workflows.tiny_models import tiny_pair as build_tiny_pair


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
