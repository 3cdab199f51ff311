"""`sparse-rlvr shift` end to end on tiny checkpoints: statistics, resume, Ray, bad input, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.analysis.runner import run_shift
from sparse_rlvr.analysis.store import policy_dir, read_tokens
from sparse_rlvr.core.decoding import decode_alone
from sparse_rlvr.core.sampling import SamplingOptions
from sparse_rlvr.core.tables import plain, prompt_ids
from sparse_rlvr.core.testing_hooks import KILL_AFTER_SHARDS
from sparse_rlvr.workflows.tiny_models import save_tiny_model, tiny_tokenizer
from tests.analysis.conftest import TRIGGER, write_jsonl


def config(checkpoints, data, out, policy="trigger", **kwargs) -> ShiftConfig:
    policies = [checkpoints[p] for p in ([policy] if isinstance(policy, str) else policy)]
    return ShiftConfig(base=checkpoints["base"], policies=policies, data=data, out=str(out), **kwargs)


def tokens_of(cfg: ShiftConfig, index: int = 0) -> pd.DataFrame:
    return read_tokens(policy_dir(cfg, index))


def test_identical_weights_give_zero_js_everywhere(checkpoints, responses_file, tmp_path):
    cfg = config(checkpoints, responses_file, tmp_path / "out", policy="same")
    summary = run_shift(cfg, show_progress=False)
    tokens = tokens_of(cfg)
    assert len(tokens) > 100 and (tokens["js"] == 0).all()
    assert summary["js"]["max"] == 0 and summary["fraction_below"]["0.0001"] == 1.0
    assert summary["fraction_above_high"] == 0 and summary["top1_agreement"] == 1.0
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["js"]["max"] == 0


def test_divergence_appears_exactly_where_the_models_differ(checkpoints, responses_file, tmp_path):
    cfg = config(checkpoints, responses_file, tmp_path / "out", shard_size=5, batch_size=3)
    run_shift(cfg, show_progress=False)
    tokens = tokens_of(cfg)
    tokenizer = tiny_tokenizer()
    responses = pd.read_json(responses_file, lines=True)["response"]
    for sample_id, group in tokens.groupby("sample_id"):
        ids = tokenizer(responses[sample_id], add_special_tokens=False)["input_ids"]
        assert group["token_id"].tolist() == ids
        # position t is predicted from the prompt and response tokens < t: it differs iff those hold the trigger
        trigger_at = ids.index(tokenizer.convert_tokens_to_ids(TRIGGER)) if TRIGGER in responses[sample_id] else len(ids)
        differs = group["js"].to_numpy() > 0
        assert not differs[: trigger_at + 1].any(), sample_id
        assert differs[trigger_at + 1 :].all(), sample_id
    assert set(tokens.loc[tokens["js"] > 0, "sample_id"]) == {2, 5}


def test_summary_has_the_papers_statistics(checkpoints, responses_file, tmp_path):
    summary = run_shift(config(checkpoints, responses_file, tmp_path / "out", high=1e-3, cutoffs=[1e-4, 1e-2]), show_progress=False)
    assert set(summary["fraction_below"]) == {"0.0001", "0.01"}
    assert len(summary["js"]["curve"]) == 101 and summary["js"]["curve"] == sorted(summary["js"]["curve"])
    assert len(summary["by_position"]["bin_mean"]) == 10 and summary["by_position"]["first_token_mean"] == 0
    high = summary["high_divergence"]
    assert high["tokens"] > 0 and len(high["topk_overlap_mean"]) == 10
    assert 0 <= high["policy_top1_within_base_top1"] <= high["policy_top1_within_base_top3"] <= 1
    assert sum(high["rank_histogram"].values()) == high["tokens"]
    assert sum(r["tokens"] for r in summary["by_base_entropy"]) == summary["counts"]["tokens_analysed"]
    assert summary["top_tokens"] and all(r["high_count"] <= r["total_count"] for r in summary["top_tokens"])


def test_resume_after_a_killed_run_matches_an_uninterrupted_run(checkpoints, responses_file, tmp_path):
    """The run SIGKILLs itself right after its 3rd shard (a test hook): a fixed point, not a race."""
    args = [sys.executable, "-m", "sparse_rlvr.cli", "shift", "--base", checkpoints["base"], "--policy",
            checkpoints["trigger"], "--data", responses_file, "--shard-size", "1", "--batch-size", "1"]
    killed_out = tmp_path / "killed"
    killed = subprocess.run(args + ["--out", str(killed_out)], capture_output=True, env=os.environ | {KILL_AFTER_SHARDS: "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    shards = killed_out / policy_dir(config(checkpoints, responses_file, killed_out), 0).name / "tokens"
    finished = sorted(shards.glob("*.parquet"))
    assert [p.name for p in finished] == [f"shard-{k:05d}.parquet" for k in range(3)], "killed right after shard 3 of 12"
    assert not list(shards.glob("*.partial")) and not (killed_out / "summary.json").exists()
    first_mtime = finished[0].stat().st_mtime_ns
    subprocess.run(args + ["--out", str(killed_out)], check=True, capture_output=True)
    assert finished[0].stat().st_mtime_ns == first_mtime, "a finished shard was recomputed"
    assert len(list(shards.glob("*.parquet"))) == 12
    clean_out = tmp_path / "clean"
    subprocess.run(args + ["--out", str(clean_out)], check=True, capture_output=True)
    cfg_killed = config(checkpoints, responses_file, killed_out)
    pd.testing.assert_frame_equal(tokens_of(cfg_killed), tokens_of(config(checkpoints, responses_file, clean_out)))
    assert json.loads((killed_out / "summary.json").read_text()) == json.loads((clean_out / "summary.json").read_text())


def test_resume_refuses_different_settings(checkpoints, responses_file, tmp_path):
    run_shift(config(checkpoints, responses_file, tmp_path / "out"), show_progress=False)
    with pytest.raises(ValueError, match="different settings.*top_k"):
        run_shift(config(checkpoints, responses_file, tmp_path / "out", top_k=5), show_progress=False)


@pytest.mark.slow
def test_ray_workers_match_in_process(checkpoints, responses_file, tmp_path, local_ray):
    distributed = config(checkpoints, responses_file, tmp_path / "ray_out", shard_size=3, workers=2)
    run_shift(distributed, show_progress=False)
    local_ray.shutdown()
    local = config(checkpoints, responses_file, tmp_path / "local", shard_size=3)
    run_shift(local, show_progress=False)
    pd.testing.assert_frame_equal(tokens_of(distributed), tokens_of(local))
    assert len(list((policy_dir(distributed, 0) / "tokens").glob("*.parquet"))) == 4


def test_generated_sequences_from_verl_prompts(checkpoints, verl_prompts_file, tmp_path):
    cfg = config(checkpoints, verl_prompts_file, tmp_path / "out", sequences="policy", generate=2, max_new_tokens=12)
    summary = run_shift(cfg, show_progress=False)
    tokens = tokens_of(cfg)
    assert sorted(tokens["sample_id"].unique()) == list(range(6))  # 3 prompts x 2 samples
    assert summary["counts"]["sequences"] == 6 and tokens.groupby("sample_id").size().max() <= 12
    again = config(checkpoints, verl_prompts_file, tmp_path / "again", sequences="policy", generate=2, max_new_tokens=12)
    run_shift(again, show_progress=False)
    pd.testing.assert_frame_equal(tokens, tokens_of(again))  # seeded: reruns sample the same responses


def test_generated_responses_come_from_the_shared_decoder_and_sampler(checkpoints, verl_prompts_file, tmp_path):
    """shift samples with core.decoding (the sampler cross-sampling uses), seeded per shard and batch."""
    from transformers import AutoModelForCausalLM

    cfg = config(checkpoints, verl_prompts_file, tmp_path / "out", sequences="policy", generate=2, max_new_tokens=12,
                 top_p=0.9, temperature=0.8)
    run_shift(cfg, show_progress=False)
    tokenizer = tiny_tokenizer()
    prompts = [prompt_ids(tokenizer, plain(p), True) for p in pd.read_parquet(verl_prompts_file)["prompt"]]
    policy = AutoModelForCausalLM.from_pretrained(checkpoints["trigger"])
    expected = decode_alone(policy, [p for p in prompts for _ in range(2)], SamplingOptions(0.8, 0.9, 12),
                            vocab_size=len(tokenizer), eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                            seed=0)  # seed * 1_000_003 + shard * 10_007 + batch start, all 0 here
    responses = tokens_of(cfg).groupby("sample_id")["token_id"].apply(list).tolist()
    assert responses == expected


def test_several_policies_give_the_evolution(checkpoints, responses_file, tmp_path):
    summary = run_shift(config(checkpoints, responses_file, tmp_path / "out", policy=["same", "trigger"]), show_progress=False)
    evolution = summary["evolution"]
    assert len(evolution["checkpoints"]) == 2
    assert evolution["percentiles"]["99"][0] == 0 < evolution["percentiles"]["99"][1]


def test_long_responses_are_truncated_and_empty_ones_skipped(checkpoints, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "hi", "response": "x" * 60}, {"prompt": "hi", "response": ""}])
    cfg = config(checkpoints, data, tmp_path / "out", max_length=40)
    summary = run_shift(cfg, show_progress=False)
    prompt_length = len(tiny_tokenizer().apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)["input_ids"])
    assert summary["counts"]["truncated"] == 1 and summary["counts"]["empty"] == 1
    assert summary["counts"]["tokens_analysed"] == 40 - prompt_length


def test_bad_input_gives_clear_errors(checkpoints, responses_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl does not exist"):
        run_shift(config(checkpoints, str(tmp_path / "missing.jsonl"), tmp_path / "a"), show_progress=False)
    with pytest.raises(KeyError, match=r"no column 'answer' \(columns found: prompt, response\).*--response-column"):
        run_shift(config(checkpoints, responses_file, tmp_path / "b", response_column="answer"), show_progress=False)
    other = save_tiny_model(tmp_path / "other")
    (tmp_path / "other" / "tokenizer.json").write_text(
        (tmp_path / "other" / "tokenizer.json").read_text().replace('"Ġ"', '"Q_SPACE"'))
    bad = ShiftConfig(base=checkpoints["base"], policies=[str(other)], data=responses_file, out=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="different vocabularies"):
        run_shift(bad, show_progress=False)
    assert not (tmp_path / "c").exists(), "nothing is written before the check"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(checkpoints, responses_file, tmp_path):
    run_shift(config(checkpoints, responses_file, tmp_path / "out", report_samples=3), show_progress=False)
    report = tmp_path / "out" / "report.html"
    assert report.stat().st_size < 1_000_000
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", f"{report.as_uri()}#hover=4"],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count('class="t"') > 50, "the heatmap's token spans were not built"
    assert dom.count("<img") >= 5 and "data:image/png;base64," in dom
    tooltip = dom[dom.index('id="tip"'):]
    assert "display: block" in tooltip and "<th>base</th><th>policy</th>" in tooltip  # hover shows candidates
    png = tmp_path / "shot.png"
    subprocess.run([_chromium(), *flags, f"--screenshot={png}", "--window-size=1000,1400", report.as_uri()],
                   capture_output=True, timeout=120)
    assert png.stat().st_size > 20_000


def test_token_id_prompts_and_responses_equal_their_text(checkpoints, tmp_path):
    tokenizer = tiny_tokenizer()
    prompt, response = "Add 2 and 3.", "2 + 3 = 5 @ so \\boxed{5}"
    text = write_jsonl(tmp_path / "text.jsonl", [{"prompt": prompt, "response": response}])
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = write_jsonl(tmp_path / "ids.jsonl", [{"prompt": prompt_ids, "response": tokenizer(response, add_special_tokens=False)["input_ids"]}])
    by_text = config(checkpoints, text, tmp_path / "a", chat_template=False)
    by_ids = config(checkpoints, ids, tmp_path / "b", chat_template=False)
    run_shift(by_text, show_progress=False)
    run_shift(by_ids, show_progress=False)
    pd.testing.assert_frame_equal(tokens_of(by_text), tokens_of(by_ids))
