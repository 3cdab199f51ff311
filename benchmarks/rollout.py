"""Rollout throughput of the ``hf`` backend inside verl, against one batched HF ``generate``; demo step times.

One run, ratios within it (the machine is shared: absolute numbers move with its load):

1. The tiny GRPO recipe with 16 prompts x 8 samples (up to 16 tokens), 3 steps. Rollout tokens/s
   over steps 2-3 = response tokens / verl's ``timing_s/gen`` (the trainer's wait for the rollout);
   also "strict": response tokens / (step time minus every training stage's timer), which counts
   all untimed per-step overhead as rollout time.
2. One batched ``model.generate`` of the same model over the same count (128 sequences, 16 new
   tokens, sampling, left-padded prompts of the recipe's data), on one thread like the rollout's
   Ray worker (``OMP_NUM_THREADS=1``), timed right after the recipe run.
3. Per-step time of the demo recipe (grpo_tiny_cpu as ``sparse-rlvr demo`` runs it) with this tree
   and with an older commit (``--before COMMIT``, checked out with ``git worktree`` under /tmp; the
   shared working tree is not touched). Step 1 is reported apart: it pays the cluster's start.

    .venv/bin/python benchmarks/rollout.py [--before 8e49b40] [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from sparse_rlvr.training.verl_glue.hf_rollout import TRACE_ENV

REPO = Path(__file__).resolve().parents[1]
PROMPTS, SAMPLES, RESPONSE = 16, 8, 16
THROUGHPUT_OVERRIDES = [
    f"data.train_batch_size={PROMPTS}", f"actor_rollout_ref.rollout.n={SAMPLES}", f"data.max_response_length={RESPONSE}",
    f"actor_rollout_ref.actor.ppo_mini_batch_size={PROMPTS}", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=32",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=32", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=32",
    "trainer.total_training_steps=3", "trainer.save_freq=-1", "trainer.resume_mode=disable", "trainer.experiment_name=rollout_bench",
    "sparse_rlvr.monitor.heatmap_freq=0",
]
DEMO_OVERRIDES = [  # sparse_rlvr/workflows/demo.py's overrides (4 steps, s = 1, alpha = 20), file logger only
    "trainer.total_training_steps=4", "sparse_rlvr.weighting.scale=1.0", "sparse_rlvr.weighting.alpha=20.0",
    "trainer.logger=[console,file]", "trainer.save_freq=-1", "trainer.experiment_name=demo", "trainer.resume_mode=disable",
]
TRAINING_TIMERS = ("old_log_prob", "ref", "values", "adv", "update_critic", "update_actor", "update_weights", "save_checkpoint", "reward")


def _run(config: str, overrides: list[str], tiny: Path, out: Path, tree: Path, env: dict | None = None) -> list[dict]:
    """The recipe in a subprocess whose `sparse_rlvr` is the one in `tree` (cwd and PYTHONPATH)."""
    from sparse_rlvr.workflows.recipe_run import run_recipe

    here = os.getcwd()
    os.chdir(tree)
    try:
        run = run_recipe(config, overrides, tiny, out, timeout_s=1800, env={"PYTHONPATH": str(tree)} | (env or {}))
    finally:
        os.chdir(here)
    if run.returncode != 0:
        raise SystemExit(f"{config} in {tree} failed:\n{run.log[-4000:]}")
    return run.records


def rollout_rates(records: list[dict], steps: tuple[int, ...] = (2, 3)) -> dict[str, float]:
    tokens = gen = strict = 0.0
    for record in records:
        if record["step"] in steps:
            data = record["data"]
            tokens += data["response_length/mean"] * PROMPTS * SAMPLES
            gen += data["timing_s/gen"]
            strict += data["timing_s/step"] - sum(data.get(f"timing_s/{name}", 0.0) for name in TRAINING_TIMERS)
    return {"response_tokens": tokens, "gen_s": gen, "tokens_per_s": tokens / gen, "strict_s": strict,
            "strict_tokens_per_s": tokens / strict}


def batches_per_step(trace: Path) -> dict[int, list]:
    """Weight version (= step - 1) -> [(requests, tokens, decode seconds)] of each batch the server ran."""
    steps: dict[int, list] = {}
    if trace.exists():
        for line in trace.read_text().splitlines():
            batch = json.loads(line)
            steps.setdefault(batch["weight_version"], []).append((batch["requests"], batch["tokens"], batch["decode_s"]))
    return steps


def batched_generate_rate(tiny: Path) -> dict[str, float]:
    """One `generate` over PROMPTS x SAMPLES sequences of RESPONSE new tokens, one thread."""
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tiny / "model")
        model = AutoModelForCausalLM.from_pretrained(tiny / "model", dtype=torch.float32).eval()
        rows = pd.read_parquet(tiny / "train.parquet")["prompt"][:PROMPTS]
        texts = [tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False) for messages in rows]
        tokenizer.padding_side = "left"
        batch = tokenizer([t for t in texts for _ in range(SAMPLES)], return_tensors="pt", padding=True)
        generate = lambda n: model.generate(**batch, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=n, min_new_tokens=n,
                                            pad_token_id=tokenizer.pad_token_id)
        generate(2)  # warm
        start = time.perf_counter()
        out = generate(RESPONSE)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    tokens = (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def step_times(records: list[dict]) -> dict[str, object]:
    steps = [round(r["data"]["timing_s/step"], 2) for r in records]
    gens = [round(r["data"]["timing_s/gen"], 2) for r in records]
    later = steps[1:]
    return {"step_s": steps, "gen_s": gens, "first_step_s": steps[0], "later_mean_s": round(sum(later) / len(later), 3),
            "later_median_s": round(statistics.median(later), 3)}


def _worktree(commit: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="rollout_before_", dir="/tmp"))
    path.rmdir()
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit], check=True, capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="8e49b40", help="commit whose demo step time is 'before' (its hf rollout served one request at a time)")
    parser.add_argument("--skip-demo", action="store_true", help="only the throughput part")
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()

    from sparse_rlvr.workflows.tiny_assets import make_tiny_assets

    out = args.out or Path(tempfile.mkdtemp(prefix="rollout_bench_"))
    tiny = out / "tiny"
    if not (tiny / "model").exists():
        make_tiny_assets(tiny, train_rows=64, test_rows=8)
    report: dict[str, object] = {}
    trace = out / "hf_rollout_batches.jsonl"
    records = _run("grpo_tiny_cpu", THROUGHPUT_OVERRIDES, tiny, out / "throughput", REPO, env={TRACE_ENV: str(trace)})
    report["rollout"] = rollout_rates(records)
    report["hf_batches"] = batches_per_step(trace)
    report["rollout_step_s"] = step_times(records)
    report["generate"] = batched_generate_rate(tiny)
    report["ratio"] = report["rollout"]["tokens_per_s"] / report["generate"]["tokens_per_s"]
    report["ratio_strict"] = report["rollout"]["strict_tokens_per_s"] / report["generate"]["tokens_per_s"]
    print(json.dumps(report, indent=1), flush=True)
    if not args.skip_demo:
        before = _worktree(args.before)
        try:
            report["demo_before"] = step_times(_run("grpo_tiny_cpu", DEMO_OVERRIDES, tiny, out / "demo_before", before))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
        report["demo_after"] = step_times(_run("grpo_tiny_cpu", DEMO_OVERRIDES, tiny, out / "demo_after", REPO))
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    (out / "rollout_benchmark.json").write_text(json.dumps(report, indent=1))
    print(f"written: {out / 'rollout_benchmark.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
