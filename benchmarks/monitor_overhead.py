"""Benchmark the token-shift monitor's cost in a real verl run on CPU: step time and forward count.

    .venv/bin/python benchmarks/monitor_overhead.py [--steps 6] [--repeats 2]

Runs the tiny GRPO recipe (sparse_rlvr/recipes/grpo_tiny_cpu.yaml: reference model, KL loss, hf rollout) as:
- baseline: the plugin off (`sparse_rlvr.enable=false algorithm.adv_estimator=grpo`, s = 0): verl's own
  old-log-prob pass and reference pass;
- monitored: the plugin on with divergence weighting (the recipe as written): one pass per
  micro-batch through both models, exact JS/KLs, weighted advantages, token_shift/ metrics,
  JS histogram, a heatmap table every step.
Both log to an offline W&B run, as a user watching a dashboard would.
Runs alternate (baseline, monitored, baseline, ...) so machine load hits both alike. Reports the
mean step time over steps 2..N (step 1 includes warm-up), the time of the log-prob stages, and
the number of training forwards per step counted in every worker process (forward_count.py).
Targets: step-time ratio <= 1.10 and 0 extra forwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from sparse_rlvr.training.verl_glue.benchmark_forward_counter import COUNT_ENV, read_forward_counts
from sparse_rlvr.workflows.recipe_run import run_recipe
from sparse_rlvr.workflows.tiny_assets import make_tiny_assets

VARIANTS = {
    "baseline (plugin off, verl's ref pass)": ["sparse_rlvr.enable=false", "algorithm.adv_estimator=grpo",
                                               "sparse_rlvr.weighting.scale=0"],
    "monitored (single pass + weighting + monitor)": [],
}
STAGES = ("timing_s/old_log_prob", "timing_s/ref", "timing_s/adv")


def one_run(name: str, overrides: list[str], tiny: Path, root: Path, steps: int, index: int) -> dict:
    run_dir = root / f"run{index}"
    counts = run_dir / "forwards"
    run = run_recipe(
        "grpo_tiny_cpu",
        [f"trainer.total_training_steps={steps}", "trainer.save_freq=-1", f"trainer.experiment_name=bench{index}",
         "sparse_rlvr.monitor.heatmap_freq=1", "trainer.logger=[console,file,wandb]", *overrides],
        tiny, run_dir, env={COUNT_ENV: str(counts), "WANDB_MODE": "offline", "WANDB_DIR": str(run_dir), "WANDB_SILENT": "true"},
    )
    if run.returncode != 0:
        raise SystemExit(f"{name} failed:\n{run.log[-4000:]}")
    later = [r["data"] for r in run.records if r["step"] > 1]
    forwards = read_forward_counts(counts)
    return {
        "variant": name,
        "step_s": statistics.mean(d["timing_s/step"] for d in later),
        "stages_s": sum(statistics.mean(d.get(k, 0.0) for d in later) for k in STAGES),
        "forwards_per_step": {k: v / steps for k, v in forwards.items()},
        "token_shift_metrics": sum(k.startswith("token_shift/") for k in run.records[-1]["data"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = make_tiny_assets(root / "tiny", train_rows=64, test_rows=8)
        results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
        index = 0
        for _ in range(args.repeats):
            for name, overrides in VARIANTS.items():
                results[name].append(one_run(name, overrides, tiny, root, args.steps, index))
                index += 1
                print(json.dumps(results[name][-1]))
    (base_name, base), (mon_name, mon) = results.items()
    base_step = statistics.mean(r["step_s"] for r in base)
    mon_step = statistics.mean(r["step_s"] for r in mon)
    base_fw, mon_fw = base[0]["forwards_per_step"], mon[0]["forwards_per_step"]
    print(f"\n{'variant':48s} {'step s':>8s} {'log-prob+adv s':>15s} {'fwd/step (no_grad, grad)':>26s}")
    for name, rows in results.items():
        fw = rows[0]["forwards_per_step"]
        print(f"{name:48s} {statistics.mean(r['step_s'] for r in rows):8.3f} "
              f"{statistics.mean(r['stages_s'] for r in rows):15.3f} {fw['no_grad']:>13.1f}, {fw['grad']:.1f}")
    print(f"\nstep-time ratio monitored / baseline: {mon_step / base_step:.3f} (target <= 1.10)")
    extra = (mon_fw["no_grad"] + mon_fw["grad"]) - (base_fw["no_grad"] + base_fw["grad"])
    print(f"extra forwards per step: {extra:+.1f} (target 0)")
    print(f"token_shift/ metrics logged per step by the monitored run: {mon[0]['token_shift_metrics']}")


if __name__ == "__main__":
    main()
