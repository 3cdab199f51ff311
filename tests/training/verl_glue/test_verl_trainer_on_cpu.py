"""verl's real trainer (main_ppo path, V1 TaskRunner) end to end on CPU with the ``hf`` rollout.

Each run is a subprocess of ``python -m sparse_rlvr.train`` (``sparse_rlvr.workflows.recipe_run``):
verl's ``run_ppo`` starts and owns a local Ray cluster, which dies with the process; the test
then checks that no process of that cluster is left (and kills any it finds, failing loudly).

Log-prob tolerance: verl logs ``training/rollout_probs_diff_max`` = max over response tokens of
|exp(rollout log-prob) - exp(actor's recomputed old log-prob)|. Both are fp32 forwards of the
same weights (the recipe turns verl's bf16 autocast off); they differ only in reduction order
(KV-cache decoding vs one padded full forward), measured ~3e-6. A rollout that missed a weight
sync differs by the size of an update (> 1e-3 here), so 1e-4 separates the two. Both sides are
over the tokenizer's rows: the hf rollout samples from them, and these recipes run the plugin,
whose actor cuts the tiny model's padded lm_head rows the same way; an actor that kept them
(plain verl) differs by their mass, measured 9.7e-4 after the warm start (1 step, 16 samples).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sparse_rlvr.workflows import recipe_run
from sparse_rlvr.workflows.tiny_assets import make_tiny_assets

pytestmark = pytest.mark.slow

RUN_LIMIT_S = 240  # acceptance: each run < 4 minutes on 2 cores
PROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_assets(tmp_path_factory.mktemp("tiny"), train_rows=64, test_rows=8)


def run_recipe(name: str, tiny_dir: Path, run_dir: Path, *overrides: str) -> tuple[float, list[dict], str]:
    """Run one recipe; returns (wall seconds, per-step metrics, log). Fails on error, timeout or leftovers."""
    run = recipe_run.run_recipe(name, list(overrides), tiny_dir, run_dir, timeout_s=RUN_LIMIT_S)
    assert run.returncode == 0, f"{name} failed:\n{run.log[-6000:]}"
    assert not run.leftovers, f"Ray processes left running after {name}: {run.leftovers}"
    return run.wall_s, run.records, run.log


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
    # rewards come from the project's verifier: +1 right, -1 wrong or no final answer
    assert all(-1.0 <= r["data"]["critic/score/mean"] <= 1.0 for r in records)
    assert all("token_shift/js_mean" in r["data"] for r in records)  # the recipe is divergence-weighted
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
    assert "actor/kl_loss" not in records[-1]["data"]  # no KL term...
    # ...but sparse_rlvr loaded the reference (base) model for the monitor, and compared it
    assert all(0.0 <= r["data"]["token_shift/js_mean"] <= math.log(2) for r in records)
    assert all(r["data"]["critic/score/mean"] < 1.0 for r in records)  # correctness and overlong penalty
    evicted = [r["data"].get("training/filter_groups/evicted_samples", 0) for r in records]
    print(f"dapo_tiny_cpu: samples evicted by dynamic sampling per step {evicted}")
