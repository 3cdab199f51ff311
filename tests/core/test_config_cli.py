"""Configs as the documented API: shared fields checked once, and Typer commands derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.cli import Commands
from sparse_rlvr.core.config_cli import cli_options, config_command
from sparse_rlvr.core.run_config import RunConfig, option
from sparse_rlvr.interventions.config import CrossSampleConfig

REQUIRED = {"base": "b", "data": "d.jsonl", "out": "o"}


def invoke(config_class: type, args: list[str]) -> tuple[list, object]:
    """Run the derived command on `args` inside sparse-rlvr's command group (which turns a UserError
    into `error: ...` and exit 2, as the console entry point does); return the configs it built and the result."""
    built: list = []
    app = typer.Typer(cls=Commands)
    app.callback()(lambda: None)
    app.command("run")(config_command(config_class, built.append, "doc"))
    return built, CliRunner().invoke(app, ["run", *args])


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """The files the options name (checkpoint dirs b, p, p1, p2; data d.jsonl and d.parquet), in the working dir:
    the command checks its inputs before it runs."""
    import pandas as pd

    for name in ("b", "p", "p1", "p2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    rows = pd.DataFrame({"prompt": ["1+1="], "response": ["2"], "ground_truth": ["2"]})
    rows.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    rows.to_parquet(tmp_path / "d.parquet")
    monkeypatch.chdir(tmp_path)


def test_shift_options_build_the_same_config_as_the_constructor(inputs):
    built, result = invoke(ShiftConfig, [
        "--base", "b", "--policy", "p1", "--policy", "p2", "--data", "d.jsonl", "--out", "o", "--cutoffs", "1e-4, 0.01",
        "--no-chat-template", "--max-length", "40", "--sequences", "policy", "--top-p", "0.7", "--token-chunk", "16",
    ])
    assert result.exit_code == 0, result.output
    assert built == [ShiftConfig(base="b", policies=["p1", "p2"], data="d.jsonl", out="o", cutoffs=[1e-4, 0.01],
                                 chat_template=False, max_length=40, sequences="policy", top_p=0.7, token_chunk=16)]
    defaults, result = invoke(ShiftConfig, ["--base", "b", "--policy", "p", "--data", "d.jsonl", "--out", "o"])
    assert defaults == [ShiftConfig(base="b", policies=["p"], data="d.jsonl", out="o")]


def test_cross_sample_options_build_the_same_config_as_the_constructor(inputs):
    built, result = invoke(CrossSampleConfig, [
        "--base", "b", "--policy", "p", "--data", "d.parquet", "--out", "o", "--budget", "0.1,0.2", "--threshold", "1.5",
        "--no-random-control", "--dtype", "float32", "--rule", "top-budget",
    ])
    assert result.exit_code == 0, result.output
    assert built == [CrossSampleConfig(base="b", policy="p", data="d.parquet", out="o", budgets=[0.1, 0.2],
                                       thresholds=[1.5], random_control=False, dtype="float32", rule="top-budget")]
    defaults, _ = invoke(CrossSampleConfig, ["--base", "b", "--policy", "p", "--data", "d.parquet", "--out", "o"])
    assert defaults == [CrossSampleConfig(base="b", policy="p", data="d.parquet", out="o")]
    assert (defaults[0].top_p, defaults[0].max_new_tokens, defaults[0].batch_size) == (0.7, 1024, 16)  # redefined


@pytest.mark.parametrize(("args", "message"), [
    (["--top-p", "1.5"], r"top_p (--top-p) must be in (0, 1], got 1.5; use 1.0"),
    (["--cutoffs", "1e-4,x"], "--cutoffs: expected comma-separated numbers such as 0.05,0.1, got '1e-4,x'"),
    (["--sequences", "model"], "sequences (--sequences) must be file, policy or base, got 'model'"),
])
def test_refused_values_are_usage_errors_that_name_the_option(args, message):
    built, result = invoke(ShiftConfig, ["--base", "b", "--policy", "p", "--data", "d", "--out", "o", *args])
    assert result.exit_code == 2 and not built
    assert message in " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize(("config_class", "kwargs", "message"), [
    (ShiftConfig, {"policies": []}, r"policies \(--policy\) must be at least one RL checkpoint, got \[\]; repeat --policy"),
    (ShiftConfig, {"batch_size": 0}, r"batch_size \(--batch-size\) must be >= 1, got 0"),
    (ShiftConfig, {"token_chunk": 0}, r"token_chunk \(--token-chunk\) must be >= 1, got 0"),
    (ShiftConfig, {"dtype": "fp8"}, r"dtype \(--dtype\) must be one of auto, float32, bfloat16, float16, got 'fp8'"),
    (ShiftConfig, {"temperature": 0.0}, r"temperature \(--temperature\) must be > 0, got 0.0"),
    (ShiftConfig, {"workers": -1}, r"workers \(--workers\) must be >= 0, got -1"),
    (CrossSampleConfig, {"budgets": [1.5]}, r"budgets \(--budget\) must be fractions in \[0, 1\], got \[1.5\]"),
    (CrossSampleConfig, {"thresholds": [-1.0]}, r"thresholds \(--threshold\) must be entropies >= 0 \(nats\)"),
    (CrossSampleConfig, {"eps": [-0.1]}, r"eps \(--eps\) must be JS values >= 0"),
    (CrossSampleConfig, {"direction": "sideways"}, r"direction \(--direction\) must be forward or reverse, got 'sideways'"),
    (CrossSampleConfig, {"shard_size": 0}, r"shard_size \(--shard-size\) must be >= 1, got 0"),
])
def test_config_errors_name_the_key_its_flag_and_the_value(config_class, kwargs, message):
    models = {"policies": ["p"]} if config_class is ShiftConfig else {"policy": "p"}
    with pytest.raises(ValueError, match=message):
        config_class(**(REQUIRED | models | kwargs))


def test_shared_fields_and_their_checks_live_in_run_config():
    shared = {o.field for o in cli_options(RunConfig)}
    assert shared <= {o.field for o in cli_options(ShiftConfig)} and shared <= {o.field for o in cli_options(CrossSampleConfig)}
    assert {"base", "data", "out", "prompt_column", "chat_template", "temperature", "top_p", "max_new_tokens", "seed",
            "batch_size", "shard_size", "dtype", "workers"} == shared
    assert ShiftConfig.__post_init__ is not RunConfig.__post_init__  # each adds its own checks after the shared ones


def test_a_field_without_help_cannot_become_an_option():
    @dataclass(kw_only=True)
    class Undocumented(RunConfig):
        secret: int = 3

    with pytest.raises(TypeError, match="config field 'secret' has no help text"):
        cli_options(Undocumented)


def test_options_are_ordered_by_group():
    names = [o.parameter for o in cli_options(ShiftConfig)]
    assert names[:4] == ["base", "policy", "data", "out"]
    assert names.index("sequences") < names.index("temperature") < names.index("batch_size")


def test_option_refuses_an_unknown_group():
    with pytest.raises(ValueError, match="option group must be one of models, data, method, sampling, run"):
        option("help", 1, group="misc")
