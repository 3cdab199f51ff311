"""The command line: help text and the demo, run as a user would (a subprocess)."""

from __future__ import annotations

import subprocess
import sys

BIN = [sys.executable, "-m", "sparse_rlvr.cli"]


def test_help_lists_commands():
    out = subprocess.run(BIN + ["--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in out


def test_demo_prints_divergence_table_and_summary():
    out = subprocess.run(BIN + ["demo", "--top", "3"], capture_output=True, text=True, check=True).stdout
    assert "Top 3 tokens by JS" in out and "JS mean" in out and "top-1 agreement" in out


def test_demo_with_identical_models_reports_zero_divergence():
    out = subprocess.run(BIN + ["demo", "--shift", "0"], capture_output=True, text=True, check=True).stdout
    assert "JS mean 0.0000" in out and "100% of tokens below" in out
