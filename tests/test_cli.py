"""The command line: help text and the demo, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BIN = [sys.executable, "-m", "sparse_rlvr.cli"]


def test_help_lists_commands():
    out = subprocess.run(BIN + ["--help"], capture_output=True, text=True, check=True).stdout
    for command in ("demo", "demo-shift", "shift", "cross-sample", "train"):
        assert command in out


def test_demo_prints_divergence_table_and_writes_a_shift_report(tmp_path):
    out = subprocess.run(BIN + ["demo-shift", "--top", "3", "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "Top 3 tokens by JS" in out and "JS mean" in out and "Token shift: base vs policy" in out
    summary = json.loads((tmp_path / "shift" / "summary.json").read_text())
    assert summary["counts"]["sequences"] == 64 and summary["js"]["mean"] > 0
    assert (tmp_path / "shift" / "report.html").stat().st_size > 10_000


def test_demo_with_identical_models_reports_zero_divergence(tmp_path):
    out = subprocess.run(BIN + ["demo-shift", "--shift", "0", "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "JS mean 0.0000" in out and "100% of tokens below" in out
    assert json.loads((tmp_path / "shift" / "summary.json").read_text())["js"]["max"] == 0


@pytest.mark.slow
def test_demo_trains_weighted_grpo_and_prints_token_shift_metrics(tmp_path):
    """README command (1)'s job: a tiny divergence-weighted GRPO run through verl on CPU."""
    result = subprocess.run(BIN + ["demo", "--steps", "2", "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "token_shift/ metrics logged by verl (2 steps" in out and "JS mean" in out
    assert (tmp_path / "heatmaps.html").read_text().count("p_policy") > 0
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb")) and "wandb sync" in out
    assert sorted(p.name for p in (tmp_path / "logging_board").glob("*.jsonl")) == ["step_1.jsonl", "step_2.jsonl"]
