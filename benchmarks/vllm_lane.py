"""Per-step time of the tiny GRPO recipe with verl's vLLM rollout (the CPU lane) against the ``hf`` rollout.

One run, both rollouts back to back on the same tiny model (head_dim 32, which CPU vLLM needs)
and the same recipe and overrides; ratios within the run (the machine is shared: absolute
numbers move with its load). Step 1 is reported apart: it pays the cluster's and the engine's
start. Also the rollout's share of a step (verl's ``timing_s/gen``).

    .venv/bin/python benchmarks/vllm_lane.py [--steps 5] [--prompts 8 --samples 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from sparse_rlvr.training.verl_glue.vllm_cpu_lane import vllm_cpu_missing
from sparse_rlvr.workflows import recipe_run
from sparse_rlvr.workflows.tiny_assets import make_tiny_assets


def run(rollout: str, tiny_dir: Path, work: Path, steps: int, prompts: int, samples: int) -> dict:
    overrides = [f"actor_rollout_ref.rollout.name={rollout}", f"trainer.total_training_steps={steps}", "trainer.save_freq=-1",
                 f"data.train_batch_size={prompts}", f"actor_rollout_ref.rollout.n={samples}",
                 f"actor_rollout_ref.actor.ppo_mini_batch_size={prompts}"]
    result = recipe_run.run_recipe("grpo_tiny_cpu", overrides, tiny_dir, work / rollout, timeout_s=1200)
    if result.returncode != 0:
        raise SystemExit(f"{rollout} run failed:\n{result.log[-4000:]}")
    data = [r["data"] for r in result.records]
    later = data[1:]
    return {"wall_s": round(result.wall_s, 1), "step1_s": round(data[0]["timing_s/step"], 2),
            "later_step_s": round(statistics.mean(d["timing_s/step"] for d in later), 3),
            "later_gen_s": round(statistics.mean(d["timing_s/gen"] for d in later), 3),
            "rollout_probs_diff_max": max(d["training/rollout_probs_diff_max"] for d in data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    if (missing := vllm_cpu_missing()) is not None:
        raise SystemExit(f"no vLLM CPU lane: {missing}")
    work = Path(tempfile.mkdtemp(prefix="vllm_lane_bench"))
    tiny_dir = make_tiny_assets(work / "tiny", train_rows=128, test_rows=8, vllm_compatible=True)
    results = {rollout: run(rollout, tiny_dir, work, args.steps, args.prompts, args.samples) for rollout in ("hf", "vllm")}
    results["vllm_over_hf_later_step"] = round(results["vllm"]["later_step_s"] / results["hf"]["later_step_s"], 2)
    results["vllm_over_hf_step1"] = round(results["vllm"]["step1_s"] / results["hf"]["step1_s"], 2)
    results["setting"] = f"grpo_tiny_cpu, {args.prompts} prompts x {args.samples} samples, {args.steps} steps"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
