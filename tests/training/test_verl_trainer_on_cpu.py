"""verl's real trainer (main_ppo path, V1 TaskRunner) end to end on CPU with the ``hf`` rollout.

Each run is a subprocess of ``python -m sparse_rlvr.training.launch train``: verl's
``run_ppo`` starts and owns a local Ray cluster, which dies with the process; the test then
checks that no process of that cluster is left (and kills any it finds, failing loudly).

Log-prob tolerance: verl logs ``training/rollout_probs_diff_max`` = max over response tokens of
|exp(rollout log-prob) - exp(actor's recomputed old log-prob)|. Both are fp32 forwards of the
same weights (the recipe turns verl's bf16 autocast off); they differ only in reduction order
(KV-cache decoding vs one padded full forward), measured ~3e-6. A rollout that missed a weight
sync differs by the size of an update (> 1e-3 here), so 1e-4 separates the two.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from sparse_rlvr.training.tiny_assets import make_tiny_assets

pytestmark = pytest.mark.slow

RUN_LIMIT_S = 240  # acceptance: each run < 4 minutes on 2 cores
PROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_assets(tmp_path_factory.mktemp("tiny"), train_rows=64, test_rows=8)


def _ray_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions `marker` (our run's private Ray temp dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def run_recipe(name: str, tiny_dir: Path, run_dir: Path, *overrides: str) -> tuple[float, list[dict], str]:
    """Run one recipe; returns (wall seconds, per-step metrics, log). Fails on error, timeout or leftovers."""
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray socket paths < 108 bytes
    env = os.environ | {
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": ray_tmp,
        "SPARSE_RLVR_TINY_DIR": str(tiny_dir),
        "SPARSE_RLVR_RUN_DIR": str(run_dir),
        "VERL_FILE_LOGGER_ROOT": str(run_dir / "metrics"),
        "WANDB_MODE": "disabled",
    }
    command = [sys.executable, "-m", "sparse_rlvr.training.launch", "train", "--config-name", name, *overrides]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        log, _ = process.communicate(timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        pytest.fail(f"{name} did not finish in {RUN_LIMIT_S} s:\n{log[-4000:]}")
    finally:
        leftovers = _wait_gone(ray_tmp)
    wall = time.perf_counter() - start
    assert process.returncode == 0, f"{name} failed:\n{log[-6000:]}"
    assert not leftovers, f"Ray processes left running after {name}: {leftovers}"
    experiment = name if not any(o.startswith("trainer.experiment_name=") for o in overrides) else \
        [o for o in overrides if o.startswith("trainer.experiment_name=")][0].split("=", 1)[1]
    lines = (run_dir / "metrics" / "sparse_rlvr_tiny" / f"{experiment}.jsonl").read_text().splitlines()
    return wall, [json.loads(line) for line in lines], log


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


def _model_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return {k: (v.full_tensor() if hasattr(v, "full_tensor") else v) for k, v in state.items()}


def _assert_training_went_well(records: list[dict], steps: list[int]) -> None:
    assert [r["step"] for r in records] == steps
    for record in records:
        data = record["data"]
        for key in ("actor/pg_loss", "actor/loss", "actor/grad_norm", "critic/score/mean"):
            assert math.isfinite(data[key]), (record["step"], key, data[key])
        # rollout's sampled-token log-probs (after a sync from step 2 on) vs the actor's recomputation
        assert data["training/rollout_probs_diff_max"] < PROB_TOLERANCE, (record["step"], data["training/rollout_probs_diff_max"])


def _report(name: str, wall: float, records: list[dict]) -> None:
    per_step = [round(r["data"]["timing_s/step"], 2) for r in records]
    print(f"\n{name}: wall {wall:.1f} s, per-step {per_step} s")


def test_grpo_with_reference_trains_checkpoints_and_resumes(tiny_dir, tmp_path):
    wall, records, log = run_recipe("grpo_tiny_cpu", tiny_dir, tmp_path)
    _report("grpo_tiny_cpu", wall, records)
    assert wall < RUN_LIMIT_S
    _assert_training_went_well(records, [1, 2, 3])
    assert "actor/kl_loss" in records[-1]["data"]  # the reference model took part
    # rewards come from the project's verifier: the random tiny model never gives a final answer,
    # which sparse_rlvr_math scores -1 (verl's default MATH scorer would give 0)
    assert all(r["data"]["critic/score/mean"] == -1.0 for r in records)
    checkpoint = tmp_path / "grpo_tiny_cpu" / "global_step_3" / "actor" / "model_world_size_1_rank_0.pt"
    assert (tmp_path / "grpo_tiny_cpu" / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    trained = _model_state(checkpoint)
    from safetensors.torch import load_file

    initial = load_file(tiny_dir / "model" / "model.safetensors")
    changed = [name for name, tensor in initial.items() if name in trained and not torch.equal(tensor, trained[name])]
    assert changed, "no actor weight changed in 3 steps"

    # resume: the same run directory, 2 more steps; verl must continue at step 4
    wall, records, log = run_recipe("grpo_tiny_cpu", tiny_dir, tmp_path, "trainer.total_training_steps=5",
                                    "trainer.experiment_name=grpo_tiny_cpu_resumed",
                                    f"trainer.default_local_dir={tmp_path / 'grpo_tiny_cpu'}")
    _report("grpo_tiny_cpu resumed", wall, records)
    _assert_training_went_well(records, [4, 5])


def test_dapo_trains(tiny_dir, tmp_path):
    wall, records, log = run_recipe("dapo_tiny_cpu", tiny_dir, tmp_path)
    _report("dapo_tiny_cpu", wall, records)
    assert wall < RUN_LIMIT_S
    _assert_training_went_well(records, [1, 2, 3])
    assert "actor/kl_loss" not in records[-1]["data"]  # no reference model, no KL
    # overlong penalty: the random tiny model never answers, so only the penalty moves the score
    assert any(r["data"]["critic/score/mean"] < 0 for r in records)
    evicted = [r["data"].get("training/filter_groups/evicted_samples", 0) for r in records]
    print(f"dapo_tiny_cpu: samples evicted by dynamic sampling per step {evicted}")
