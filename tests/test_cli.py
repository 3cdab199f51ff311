"""The command line: help text and the demo, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields

import pytest
import typer

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.cli import app
from sparse_rlvr.core.run_config import flag_of
from sparse_rlvr.interventions.config import CrossSampleConfig

BIN = [sys.executable, "-m", "sparse_rlvr.cli"]
WIDE = os.environ | {"COLUMNS": "400", "TERM": "dumb"}  # one line per option, whatever the terminal


def test_help_lists_commands():
    out = subprocess.run(BIN + ["--help"], capture_output=True, text=True, check=True, env=WIDE).stdout
    listed = re.findall(r"^[│|]\s+([a-z][a-z-]*)\s{2,}", out, flags=re.MULTILINE)  # each command's row starts with its name
    for command in ("demo", "demo-shift", "shift", "cross-sample", "train"):
        assert command in listed, (command, listed)  # a whole name: "demo" is not found inside "demo-shift"


CONFIG_COMMANDS = [("shift", ShiftConfig), ("cross-sample", CrossSampleConfig)]


@pytest.mark.parametrize(("command", "config_class"), CONFIG_COMMANDS)
def test_every_config_field_has_help_and_is_an_option_of_its_command(command, config_class):
    out = subprocess.run(BIN + [command, "--help"], capture_output=True, text=True, check=True, env=WIDE).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}
    for config_field in fields(config_class):
        flag = flag_of(config_field)
        help_text = config_field.metadata.get("help", "")
        assert len(help_text) > 15, f"{config_class.__name__}.{config_field.name} has no help text"
        assert re.search(rf"(?<![\w-]){flag}(?![\w-])", out), f"{flag} missing from `{command} --help`"
        assert help_text.split()[0] in words
        param = params[flag[2:].replace("-", "_")]
        assert param.help == help_text and flag in param.opts


# The options and defaults `shift` and `cross-sample` had before their options were derived from the configs.
SHIFT_SURFACE = {
    "--base": None, "--policy": None, "--data": None, "--out": None, "--sequences": "file", "--generate": 1,
    "--prompt-column": "prompt", "--response-column": "response", "--chat-template": True, "--max-new-tokens": 512,
    "--temperature": 1.0, "--top-p": 1.0, "--seed": 0, "--max-length": None, "--batch-size": 8, "--shard-size": 64,
    "--high": 0.1, "--cutoffs": "1e-4,1e-3,1e-2", "--dtype": "auto", "--workers": 0, "--report-samples": 8,
}
CROSS_SAMPLE_SURFACE = {
    "--base": None, "--policy": None, "--data": None, "--out": None, "--direction": "forward", "--rule": "js-threshold",
    "--eps": "0.05,0.1,0.2", "--budget": "0.02,0.05,0.1", "--threshold": "1,2", "--random-control": True,
    "--samples": 32, "--temperature": 1.0, "--top-p": 0.7, "--max-new-tokens": 1024, "--seed": 0,
    "--answer-column": "auto", "--batch-size": 16, "--shard-size": 8, "--workers": 0,
}


@pytest.mark.parametrize(("command", "surface"), [("shift", SHIFT_SURFACE), ("cross-sample", CROSS_SAMPLE_SURFACE)])
def test_derived_options_keep_the_old_names_and_defaults(command, surface):
    params = {opt: p for p in typer.main.get_command(app).commands[command].params for opt in p.opts}
    for flag, default in surface.items():
        assert flag in params, f"`{command}` lost {flag}"
        if isinstance(default, str) and "," in default:  # comma lists: same numbers
            assert [float(v) for v in params[flag].default.split(",")] == [float(v) for v in default.split(",")]
        else:
            assert params[flag].default == default and params[flag].required == (flag in ("--base", "--policy", "--data", "--out"))


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
