"""Bad input, run through the real console entry point: one `error: ...` line naming the value, exit 2, no traceback.

Each case fails before any heavy work (model loading, Ray, verl), so no output directory is
made. `--debug` and SPARSE_RLVR_DEBUG=1 show the traceback; a real failure still shows one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sparse_rlvr.workflows.tiny_models import save_tiny_model

BIN = Path(sys.executable).parent / "sparse-rlvr"
ENV = {k: v for k, v in os.environ.items() if k != "SPARSE_RLVR_DEBUG"} | {"COLUMNS": "200", "TERM": "dumb",
                                                                        "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Tiny base/policy checkpoints, a model with another tokenizer, and data files good and bad."""
    root = tmp_path_factory.mktemp("cli_errors")
    save_tiny_model(root / "base", seed=0)
    save_tiny_model(root / "policy", seed=1)
    shutil.copytree(root / "policy", root / "other")
    tokenizer = root / "other" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"Ġ"', '"Q_SPACE"'))
    (root / "no_config").mkdir()
    rows = [{"prompt": "Compute 2+3.", "response": "2+3=5. \\boxed{5}", "ground_truth": "5"}]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "text.jsonl").write_text(json.dumps({"text": "\\boxed{5}", "ground_truth": "5"}) + "\n")
    (root / "nulls.jsonl").write_text(json.dumps({"response": None, "ground_truth": "5"}) + "\n")
    (root / "empty.jsonl").write_text("\n")
    (root / "broken.jsonl").write_text('{"prompt": \n{"prompt": "a"}\n')
    (root / "data.csv").write_text("prompt,response\na,b\n")
    (root / "number_prompt.jsonl").write_text(json.dumps({"prompt": 7, "response": "x"}) + "\n")
    pd.DataFrame({"question": ["Compute 2+3."], "solution_text": ["5"]}).to_parquet(root / "verl.parquet")
    pd.DataFrame({"prompt": pd.Series([], dtype=str)}).to_parquet(root / "empty.parquet")
    (root / "a_file").write_text("not a directory")
    return root


def sparse_rlvr(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env or ENV, cwd=cwd,
                          timeout=300)


def assert_user_error(result: subprocess.CompletedProcess, *named: str) -> str:
    """Exit 2, no traceback, an `error:` line on stderr naming every value in `named`; returns the message."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output and "──────" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    message = " ".join(lines)
    for value in named:
        assert value in message, (value, message)
    return message


def shift_args(files: Path, out_dir: Path, **changes: str) -> list[str]:
    options = {"--base": files / "base", "--policy": files / "policy", "--data": files / "data.jsonl", "--out": out_dir}
    options.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
    return [part for option, value in options.items() for part in (option, str(value))]


# (name, args given `files` and an output dir, values the message must name)
SHIFT_CASES = [
    ("base path that does not exist", {"base": "/no/such/checkpoint"}, ["--base", "/no/such/checkpoint", "hub id"]),
    ("policy path that does not exist", {"policy": "./runs/nope"}, ["--policy", "./runs/nope"]),
    ("base directory without config.json", {"base": "{files}/no_config"}, ["no_config", "config.json"]),
    ("data file missing", {"data": "{files}/missing.jsonl"}, ["missing.jsonl", "does not exist", "--data"]),
    ("data file of a type we cannot read", {"data": "{files}/data.csv"}, ["data.csv", "'.csv'", ".parquet"]),
    ("data file with a broken JSON line", {"data": "{files}/broken.jsonl"}, ["broken.jsonl:1", "not valid JSON"]),
    ("empty data file", {"data": "{files}/empty.jsonl"}, ["empty.jsonl", "no rows"]),
    ("empty parquet file", {"data": "{files}/empty.parquet"}, ["empty.parquet", "no rows"]),
    ("missing response column", {"response_column": "answer"},
     ["'answer'", "columns found: prompt, response, ground_truth", "--response-column"]),
    ("missing prompt column", {"prompt_column": "promt"}, ["'promt'", "did you mean 'prompt'", "--prompt-column"]),
    ("output path that is an existing file", {"out": "{files}/a_file"}, ["--out", "a_file", "existing file"]),
    ("output under a file", {"out": "{files}/a_file/run"}, ["a_file", "is a file"]),
    ("top-p out of range", {"top_p": "1.5"}, ["top_p", "--top-p", "1.5"]),
    ("negative workers", {"workers": "-1"}, ["--workers", "-1"]),
    ("comma list that is not numbers", {"cutoffs": "0.1,abc"}, ["--cutoffs", "0.1,abc"]),
    ("unknown sequence source", {"sequences": "polcy"}, ["--sequences", "polcy"]),
]


@pytest.mark.parametrize(("case", "changes", "named"), SHIFT_CASES, ids=[c[0] for c in SHIFT_CASES])
def test_shift_bad_input_is_one_line_and_exit_2(files, tmp_path, case, changes, named):
    changes = {k: v.format(files=files) for k, v in changes.items()}
    result = sparse_rlvr("shift", *shift_args(files, tmp_path / "out", **changes))
    assert_user_error(result, *named)
    assert not (tmp_path / "out").exists(), "refused before any work: nothing written"


CROSS_SAMPLE_CASES = [
    ("named answer column missing", ["--answer-column", "gold"], ["'gold'", "columns found", "--answer-column"]),
    ("no ground truth found by auto", ["--data", "{files}/verl.parquet", "--prompt-column", "question"],
     ["no ground truth", "question, solution_text", "--answer-column"]),
    ("budget out of range", ["--rule", "top-budget", "--budget", "0.1,2"], ["budgets", "--budget", "[0, 1]"]),
    ("unknown direction", ["--direction", "sideways"], ["--direction", "sideways"]),
    ("policy that is a file", ["--policy", "{files}/a_file"], ["--policy", "a_file", "is a file"]),
]


@pytest.mark.parametrize(("case", "extra", "named"), CROSS_SAMPLE_CASES, ids=[c[0] for c in CROSS_SAMPLE_CASES])
def test_cross_sample_bad_input_is_one_line_and_exit_2(files, tmp_path, case, extra, named):
    args = ["--base", files / "base", "--policy", files / "policy", "--data", files / "data.jsonl", "--out", tmp_path / "out"]
    extra = [e.format(files=files) for e in extra]
    for flag, value in zip(extra[::2], extra[1::2]):  # later options override earlier ones of the same name
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert_user_error(sparse_rlvr("cross-sample", *args), *named)
    assert not (tmp_path / "out").exists()


def test_grade_with_a_misnamed_response_column_names_it_instead_of_reporting_zero(files, tmp_path):
    data = tmp_path / "text.jsonl"
    shutil.copy(files / "text.jsonl", data)
    message = assert_user_error(sparse_rlvr("grade", data), "'response'", "columns found: text, ground_truth",
                                "--response-column")
    assert "accuracy" not in message and not (tmp_path / "text.graded.jsonl").exists()


def test_grade_where_every_row_fails_for_one_cause_stops_instead_of_an_accuracy(files, tmp_path):
    data = tmp_path / "nulls.jsonl"
    shutil.copy(files / "nulls.jsonl", data)
    result = sparse_rlvr("grade", data)
    assert_user_error(result, "every one of the 1 rows was graded 'error'", "--response-column")
    assert "accuracy" not in result.stdout
    assert (tmp_path / "nulls.graded.jsonl").exists(), "the graded rows are kept"


@pytest.mark.parametrize(("args", "named"), [
    (["{files}/empty.jsonl"], ["empty.jsonl", "no rows"]),
    (["{files}/data.jsonl", "--answer-column", "reward_model.ground_truth"], ["'reward_model'", "--answer-column"]),
    (["{files}/data.jsonl", "--workers", "0"], ["num_workers", "--workers"]),
    (["{files}/data.csv"], ["data.csv", "'.csv'"]),
], ids=["empty file", "missing answer column", "zero workers", "csv"])
def test_grade_bad_input(files, args, named):
    assert_user_error(sparse_rlvr("grade", *[a.format(files=files) for a in args]), *named)


@pytest.mark.parametrize("command", [["demo"], ["demo-shift"], ["make-tiny"]])
def test_output_that_is_an_existing_file(files, command):
    out = files / "a_file"
    args = [*command, str(out)] if command == ["make-tiny"] else [*command, "--out", str(out)]
    assert_user_error(sparse_rlvr(*args), str(out), "existing file")


@pytest.mark.parametrize(("args", "named"), [
    (["demo-shift", "--top", "0"], ["--top", "0"]),
])
def test_out_of_range_demo_options(tmp_path, args, named):
    assert_user_error(sparse_rlvr(*args, "--out", str(tmp_path / "out")), *named)
    assert not (tmp_path / "out").exists()


def test_train_with_a_misspelt_key_names_the_nearest_valid_one():
    result = sparse_rlvr("train", "--config-name", "grpo_tiny_cpu", "sparse_rlvr.weighting.scael=1")
    assert_user_error(result, "sparse_rlvr.weighting.scael", "did you mean sparse_rlvr.weighting.scale?")


def test_train_with_a_misspelt_verl_key_and_an_unknown_recipe():
    result = sparse_rlvr("train", "--config-name", "grpo_tiny_cpu", "data.train_batch_sise=2")
    assert_user_error(result, "data.train_batch_sise", "did you mean data.train_batch_size?")
    result = sparse_rlvr("train", "--config-name", "grpo_tiny_cpux")
    assert_user_error(result, "grpo_tiny_cpux", "did you mean grpo_tiny_cpu?")


def test_train_with_a_missing_model_fails_before_ray(tmp_path):
    result = sparse_rlvr("train", "--config-name", "grpo_tiny_cpu", f"actor_rollout_ref.model.path={tmp_path}/nope",
                         f"data.train_files={tmp_path}/train.parquet")
    assert_user_error(result, "actor_rollout_ref.model.path", f"{tmp_path}/nope")


@pytest.mark.parametrize(("args", "named"), [
    (["shift", "--top-p", "abc"], ["--top-p", "sparse-rlvr shift --help"]),
    (["shift", "--base", "b", "--policy", "p", "--data", "d", "--out", "o", "--sequencs", "file"], ["--sequencs", "--sequences"]),
    (["ablate", "--scale", "1"], ["Missing option '--config-name'"]),
    (["grade", "nofile.jsonl"], ["nofile.jsonl", "does not exist"]),
    (["nosuchcmd"], ["nosuchcmd"]),
], ids=["wrong type", "misspelt option", "missing option", "missing file argument", "unknown command"])
def test_usage_errors_are_one_line_too(tmp_path, args, named):
    assert_user_error(sparse_rlvr(*args, cwd=tmp_path), *named)


def test_prepare_data_and_ablate_keep_their_one_line_errors():
    assert_user_error(sparse_rlvr("prepare-data", "nosuch", "-i", "x.jsonl", "-o", "y.parquet"), "'nosuch'", "known:")
    assert_user_error(sparse_rlvr("ablate", "--config-name", "grpo_tiny_cpu", "--scale", "0,,1", "--dry-run"), "--scale", "0,,1")


def test_different_tokenizers_are_one_line(files, tmp_path):
    result = sparse_rlvr("cross-sample", "--base", files / "base", "--policy", files / "other", "--data",
                         files / "data.jsonl", "--out", tmp_path / "out", "--samples", "1")
    assert_user_error(result, "different vocabularies", str(files / "other"))
    assert not list((tmp_path / "out").glob("*/*/shard-*")), "no decoding started"


def test_a_hub_id_that_cannot_be_fetched_is_one_line(files, tmp_path):
    """A plausible hub id passes the cheap check; the hub's refusal (offline here) is still one line, before models load."""
    result = sparse_rlvr("shift", *shift_args(files, tmp_path / "out", base="nosuchorg/nosuchmodel"))
    assert_user_error(result, "nosuchorg/nosuchmodel", "could not load a tokenizer")
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback_of_a_user_error(files):
    for args, env in ((["--debug", "demo", "--out", files / "a_file"], ENV),
                      (["demo", "--out", files / "a_file"], ENV | {"SPARSE_RLVR_DEBUG": "1"})):
        result = sparse_rlvr(*args, env=env)
        assert result.returncode == 2
        assert "Traceback" in result.stderr and "UserError" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: --out")


def test_a_real_failure_keeps_its_traceback_and_says_how_to_resume(files, tmp_path):
    """A crash after a shard is written (here the kill test hook given a bad value) is not a user error."""
    out = tmp_path / "out"
    result = sparse_rlvr("shift", *shift_args(files, out), "--max-new-tokens", "4",
                         env=ENV | {"SPARSE_RLVR_TEST_KILL_AFTER_SHARDS": "x"})
    assert result.returncode not in (0, 2), result.stderr[-2000:]
    assert "Traceback" in result.stderr and "must be a shard count" in result.stderr
    assert "rerun the same command to resume" in result.stderr
    assert list(out.glob("policy-*/tokens/shard-*.parquet")), "the finished shard is kept"
