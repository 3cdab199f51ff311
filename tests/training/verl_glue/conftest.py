"""Shared fixtures of the verl glue tests."""

from __future__ import annotations

import shutil
import tempfile

import pytest


@pytest.fixture(scope="module")
def transfer_queue():
    """A real local Ray cluster with TransferQueue's controller and storage (they need > 2 logical CPUs),
    shared by a module's tests (each test writes the keys it reads)."""
    import ray
    import transfer_queue as tq

    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=4, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
        try:
            tq.init()
            yield tq
        finally:
            tq.close()
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)
