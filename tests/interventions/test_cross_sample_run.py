"""`sparse-rlvr cross-sample` end to end on tiny checkpoints: table, resume, Ray, grading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from sparse_rlvr.core.testing_hooks import KILL_AFTER_SHARDS
from sparse_rlvr.interventions.config import CrossSampleConfig
from sparse_rlvr.interventions.runner import read_records, run_cross_sample
from sparse_rlvr.workflows.tiny_models import save_checkpoint, tiny_pair


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    base, policy, tokenizer = tiny_pair(shift=0.5)
    for name, model in (("base", base), ("policy", policy)):
        save_checkpoint(model, tokenizer, root / name)
    rows = [{"data_source": "synthetic", "prompt": [{"role": "user", "content": f"What is {i} + {i}?"}],
             "ability": "math", "reward_model": {"style": "rule", "ground_truth": str(2 * i)},
             "extra_info": {"index": i}} for i in range(4)]
    pd.DataFrame(rows).to_parquet(root / "prompts.parquet")
    return root


def make_config(root, out, **kwargs) -> CrossSampleConfig:
    settings = dict(eps=[0.1], samples=2, max_new_tokens=16, shard_size=2, batch_size=4, top_p=0.9) | kwargs
    return CrossSampleConfig(base=str(root / "base"), policy=str(root / "policy"), data=str(root / "prompts.parquet"),
                             out=str(out), **settings)


def test_table_has_measured_end_points_budget_and_random_control(pair_dirs, tmp_path):
    config = make_config(pair_dirs, tmp_path / "out")
    table = {row["setting"]: row for row in run_cross_sample(config, show_progress=False)}
    assert list(table) == ["primary-only", "intervening-only", "js-0.1", "random@js-0.1"]
    assert table["primary-only"]["effective_pct_tokens"] == 0
    assert table["intervening-only"]["effective_pct_tokens"] == 100
    assert 0 < table["js-0.1"]["effective_pct_tokens"] < 100
    assert all(row["responses"] == 8 and row["prompts"] == 4 for row in table.values())
    js, control = read_records(config, "js-0.1"), read_records(config, "random@js-0.1")
    for a, b in zip(js, control):  # as many swaps as the JS run made in the same response, at random steps
        assert (a["prompt_index"], a["sample"]) == (b["prompt_index"], b["sample"])
        assert b["n_swapped"] <= a["n_swapped"]
        if b["n_tokens"] >= a["n_tokens"]:  # positions are drawn within the JS response's length
            assert b["n_swapped"] == a["n_swapped"]
    assert sum(b["n_swapped"] for b in control) > 0
    for name in ("results.json", "accuracy_vs_budget.png", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_responses_are_graded_by_the_project_verifier(pair_dirs, tmp_path):
    from sparse_rlvr.core.verification.math import compute_score

    config = make_config(pair_dirs, tmp_path / "out", random_control=False)
    run_cross_sample(config, show_progress=False)
    for record in read_records(config, "js-0.1"):
        expected = compute_score("synthetic", record["response"], record["answer"])
        assert (record["acc"], record["reason"]) == (bool(expected["acc"]), expected["reason"])


def test_resume_after_a_killed_run_matches_an_uninterrupted_run(pair_dirs, tmp_path):
    """The run SIGKILLs itself right after its 3rd shard (a test hook): a fixed point, not a race."""
    args = [sys.executable, "-m", "sparse_rlvr.cli", "cross-sample", "--base", str(pair_dirs / "base"),
            "--policy", str(pair_dirs / "policy"), "--data", str(pair_dirs / "prompts.parquet"), "--eps", "0.1",
            "--samples", "2", "--max-new-tokens", "16", "--shard-size", "1", "--batch-size", "4", "--top-p", "0.9"]
    killed = tmp_path / "killed"
    run = subprocess.run(args + ["--out", str(killed)], capture_output=True, env=os.environ | {KILL_AFTER_SHARDS: "3"})
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    done = sorted(p.relative_to(killed).as_posix() for p in killed.glob("forward/*/shard-*.jsonl"))
    assert done == [f"forward/primary-only/shard-{k:05d}.jsonl" for k in range(3)], "killed right after shard 3 of 16"
    first_mtime = (killed / done[0]).stat().st_mtime_ns
    subprocess.run(args + ["--out", str(killed)], check=True, capture_output=True)
    assert (killed / done[0]).stat().st_mtime_ns == first_mtime, "a finished shard was recomputed"
    subprocess.run(args + ["--out", str(tmp_path / "clean")], check=True, capture_output=True)
    assert json.loads((killed / "results.json").read_text()) == json.loads((tmp_path / "clean" / "results.json").read_text())
    for setting in ("primary-only", "intervening-only", "js-0.1", "random@js-0.1"):
        assert read_records(make_config(pair_dirs, killed), setting) == read_records(make_config(pair_dirs, tmp_path / "clean"), setting)


@pytest.mark.slow
def test_ray_workers_match_in_process(pair_dirs, tmp_path, local_ray):
    distributed = make_config(pair_dirs, tmp_path / "ray", workers=2, random_control=False)
    run_cross_sample(distributed, show_progress=False)
    local_ray.shutdown()
    local = make_config(pair_dirs, tmp_path / "local", random_control=False)
    run_cross_sample(local, show_progress=False)
    for setting in ("primary-only", "intervening-only", "js-0.1"):
        assert read_records(distributed, setting) == read_records(local, setting)


def test_different_tokenizers_fail_before_any_decoding(pair_dirs, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(pair_dirs / "policy", other)
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"Ġ"', '"Q_SPACE"'))
    config = CrossSampleConfig(base=str(pair_dirs / "base"), policy=str(other), data=str(pair_dirs / "prompts.parquet"),
                               out=str(tmp_path / "out"), samples=1, max_new_tokens=4)
    with pytest.raises(ValueError, match="different vocabularies"):
        run_cross_sample(config, show_progress=False)


def test_missing_ground_truth_names_the_columns(pair_dirs, tmp_path):
    pd.DataFrame({"prompt": ["hi"]}).to_parquet(tmp_path / "p.parquet")
    config = CrossSampleConfig(base=str(pair_dirs / "base"), policy=str(pair_dirs / "policy"), data=str(tmp_path / "p.parquet"),
                               out=str(tmp_path / "out"))
    with pytest.raises(KeyError, match=r"no ground truth \(columns found: prompt\).*--answer-column"):
        run_cross_sample(config, show_progress=False)
