"""The command line: help text and the demo, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

BIN = [sys.executable, "-m", "sparse_rlvr.cli"]


def test_help_lists_commands():
    out = subprocess.run(BIN + ["--help"], capture_output=True, text=True, check=True).stdout
    for command in ("demo", "shift", "cross-sample"):
        assert command in out


def test_demo_prints_divergence_table_and_writes_a_shift_report(tmp_path):
    out = subprocess.run(BIN + ["demo", "--top", "3", "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "Top 3 tokens by JS" in out and "JS mean" in out and "Token shift: base vs policy" in out
    summary = json.loads((tmp_path / "shift" / "summary.json").read_text())
    assert summary["counts"]["sequences"] == 64 and summary["js"]["mean"] > 0
    assert (tmp_path / "shift" / "report.html").stat().st_size > 10_000


def test_demo_with_identical_models_reports_zero_divergence(tmp_path):
    out = subprocess.run(BIN + ["demo", "--shift", "0", "--out", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert "JS mean 0.0000" in out and "100% of tokens below" in out
    assert json.loads((tmp_path / "shift" / "summary.json").read_text())["js"]["max"] == 0
