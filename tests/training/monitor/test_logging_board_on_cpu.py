"""RL Logging Board dump: the viewer's schema and folder layout (one file per rank per run, steps
appended in order), values it can compute with, a resume that never lists a step twice, and an
exact round trip of our own fields. The viewer itself is run by scripts/check_logging_board_compat.py."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace

import numpy as np
import pytest

from sparse_rlvr.training.monitor.logging_board import (
    EMPTY_RESPONSE,
    EXTRA_KEYS,
    INF_STAND_IN,
    NUMERIC_LISTS,
    PLACEHOLDER_REF_LOGPROB,
    VIEWER_KEYS,
    board_file,
    read_logging_board,
    sample_from_record,
    write_logging_board_step,
)
from sparse_rlvr.training.monitor.samples import ShiftSample


def _sample(uid: str, tokens: list[str], reward: float = 1.0, **extra) -> ShiftSample:
    n = len(tokens)
    fields = dict(uid=uid, prompt=f"prompt of {uid}", response="".join(tokens), tokens=tokens,
                  token_ids=list(range(10, 10 + n)), logprobs=[-0.1 * (i + 1) for i in range(n)],
                  ref_logprobs=[-0.2 * (i + 1) for i in range(n)], entropy=[0.5] * n,
                  js=[0.01 * i for i in range(n)], reward=reward)
    return ShiftSample(**(fields | extra))


def _strict_lines(path) -> list[dict]:
    """Each line parsed as strict JSON (NaN/Infinity rejected, as JSON itself does)."""
    def reject(name):
        raise ValueError(f"non-JSON constant {name}")
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "whole lines only"
    return [json.loads(line, parse_constant=reject) for line in text.splitlines()]


def _steps(path) -> list[int]:
    return [record["step"] for record in _strict_lines(path)]


def _with_token_rewards(sample: ShiftSample) -> ShiftSample:
    """The sample as it reads back: token_rewards=None (score on the last token) is written out."""
    if sample.token_rewards is not None:
        return sample
    rewards = [0.0] * len(sample.tokens)
    rewards[-1:] = [sample.reward] if rewards else []
    return replace(sample, token_rewards=rewards)


def _as_the_viewer_computes(record: dict) -> None:
    """What the viewer's load_log_file and sample view do with one line, with its failure modes asserted away."""
    for key in ("logprobs", "ref_logprobs", "token_rewards"):
        values = np.array(record[key])
        assert values.dtype == np.float64 and np.isfinite(values).all(), f"{key}: a null/NaN/inf breaks the step page"
        assert len(values) == len(record["response_tokens"]), f"{key} is not aligned with the tokens"
    log_ratio = np.array(record["logprobs"]) - np.array(record["ref_logprobs"])
    with np.errstate(over="raise"):
        np.exp(log_ratio) - 1 - log_ratio  # its k3 KL
    assert isinstance(record["reward"], float) and math.isfinite(record["reward"])
    assert record["response"] and record["response_tokens"][-1] is not None  # the sample view reads the last token
    assert isinstance(record["ground_truth"], str)


def test_round_trip_has_the_viewer_schema_and_our_fields(tmp_path):
    hostile = ["<script>", '"q"', " é", "\n", "\ud800"]  # markup, quotes, non-ASCII, newline, lone surrogate
    a = _sample("g0", hostile, reward=1.0, weights=[1.0, 1.1, 1.2, 0.9, 1.0], advantages=[0.5] * 5, ground_truth="27")
    b = _sample("g1", ["x", "y"], reward=0.0, logprobs=[-0.5, -0.25], token_rewards=[0.25, -0.75])
    path = write_logging_board_step(tmp_path, 7, [a, b], experiment="run")

    assert path == tmp_path / "run" / "rollout_data_rank_0.jsonl" == board_file(tmp_path, "run")
    first, second = _strict_lines(path)
    # a lone surrogate (the viewer's tables cannot encode one) is written as U+FFFD; token_ids stay exact
    a = replace(a, tokens=[t.replace("\ud800", "\ufffd") for t in a.tokens], response=a.response.replace("\ud800", "\ufffd"))
    for record, sample in ((first, a), (second, b)):
        assert set(VIEWER_KEYS) | set(EXTRA_KEYS) == set(record)
        assert record["step"] == 7 and record["uid"] == sample.uid and record["reward"] == sample.reward
        assert record["prompt"] == sample.prompt and record["response"] == sample.response
        assert record["response_tokens"] == sample.tokens and record["token_ids"] == sample.token_ids
        n = len(sample.tokens)
        assert all(len(record[k]) == n for k in ("logprobs", "ref_logprobs", "token_rewards", "entropy", "js"))
        assert record["js"] == sample.js and record["ref_logprobs"] == sample.ref_logprobs
        assert record["non_finite"] == {} and record["placeholders"] == []
        _as_the_viewer_computes(record)
        assert sample_from_record(record) == _with_token_rewards(sample)
    assert first["weights"] == a.weights and first["advantages"] == a.advantages
    assert first["token_rewards"] == [0.0, 0.0, 0.0, 0.0, 1.0]  # outcome reward on the last token (verl)
    assert second["token_rewards"] == [0.25, -0.75] and second["weights"] is None
    assert first["ground_truth"] == "27" and second["ground_truth"] == ""  # unknown: an empty string, never missing
    assert read_logging_board(tmp_path, "run") == {7: [first, second]}


def test_one_file_per_rank_and_run_with_steps_appended_in_order(tmp_path):
    for step in (1, 2, 10, 11, 12):  # the old per-step files came back in os.listdir order: 1, 12, 10, 11, 2
        write_logging_board_step(tmp_path, step, [_sample(f"a{step}", ["x"]), _sample(f"b{step}", ["y"])], experiment="A")
    write_logging_board_step(tmp_path, 1, [_sample("c", ["z"])], experiment="B")
    write_logging_board_step(tmp_path, 1, [_sample("d", ["w"])], experiment="B", rank=3)

    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "A/rollout_data_rank_0.jsonl", "B/rollout_data_rank_0.jsonl", "B/rollout_data_rank_3.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A", "B"]  # the board root lists runs, as the viewer wants
    assert _steps(tmp_path / "A" / "rollout_data_rank_0.jsonl") == [1, 1, 2, 2, 10, 10, 11, 11, 12, 12]
    assert list(read_logging_board(tmp_path, "A")) == [1, 2, 10, 11, 12]
    assert [r["uid"] for r in read_logging_board(tmp_path, "B")[1]] == ["c", "d"]


def test_non_finite_numbers_get_finite_stand_ins_and_come_back_exactly(tmp_path):
    nan, inf = math.nan, math.inf
    sample = _sample("g", ["a", "b", "c"], reward=nan, logprobs=[-0.5, nan, -inf], ref_logprobs=[-inf, -1.0, -inf],
                     js=[0.1, nan, 0.0], entropy=[inf, 0.5, 0.5], weights=[1.0, nan, 1.0], advantages=[inf, -inf, 0.0],
                     token_rewards=[0.0, 0.0, inf])
    (record,) = _strict_lines(write_logging_board_step(tmp_path, 1, [sample]))
    for key in NUMERIC_LISTS:
        assert all(isinstance(v, float) and math.isfinite(v) for v in record[key]), key
    assert record["logprobs"] == [-0.5, 0.0, -INF_STAND_IN] and record["ref_logprobs"] == [-INF_STAND_IN, -1.0, -INF_STAND_IN]
    assert record["reward"] == 0.0 and record["token_rewards"] == [0.0, 0.0, INF_STAND_IN]
    assert record["non_finite"]["ref_logprobs"] == {"0": "-inf", "2": "-inf"} and record["non_finite"]["reward"] == "nan"
    _as_the_viewer_computes(record)

    back = sample_from_record(record)
    for key in (*NUMERIC_LISTS, "reward"):
        np.testing.assert_array_equal(np.array(getattr(back, key), dtype=float), np.array(getattr(sample, key), dtype=float))


def test_an_empty_response_is_a_visible_placeholder_that_reads_back_empty(tmp_path):
    empty = _sample("empty", [], reward=1.0)
    blank_text = _sample("blank", ["<eos>"], response="")  # a token that decodes to nothing
    path = write_logging_board_step(tmp_path, 0, [empty, blank_text])
    record, blank = _strict_lines(path)
    assert record["response"] == EMPTY_RESPONSE and record["response_tokens"] == [EMPTY_RESPONSE]
    assert record["logprobs"] == [0.0] and record["token_rewards"] == [1.0]
    assert record["ref_logprobs"] == [PLACEHOLDER_REF_LOGPROB] and -1e-200 < PLACEHOLDER_REF_LOGPROB < 0
    # the viewer leaves a step off its KL curve when any sample's mean log-ratio is exactly 0
    assert np.mean(np.array(record["logprobs"]) - np.array(record["ref_logprobs"])) != 0
    assert record["token_ids"] == [] and record["js"] == []  # our own per-token fields stay true
    assert blank["response"] == EMPTY_RESPONSE and blank["response_tokens"] == ["<eos>"]
    for line in (record, blank):
        _as_the_viewer_computes(line)
    assert sample_from_record(record) == _with_token_rewards(empty) and sample_from_record(blank) == _with_token_rewards(blank_text)
    assert write_logging_board_step(tmp_path, 9, []).read_text() == path.read_text()  # no samples: nothing appended


def test_a_resume_replaces_the_steps_it_redoes_and_lists_none_twice(tmp_path):
    for step in (1, 2, 3, 4):
        write_logging_board_step(tmp_path, step, [_sample(f"first-{step}", ["x"])])
    for step in (3, 4, 5):  # resumed from the step-2 checkpoint: verl runs steps 3, 4 again
        write_logging_board_step(tmp_path, step, [_sample(f"again-{step}", ["y"]), _sample(f"again-{step}b", ["z"])])
    path = board_file(tmp_path)
    assert _steps(path) == [1, 2, 3, 3, 4, 4, 5, 5]
    assert [r["uid"] for r in _strict_lines(path)][:4] == ["first-1", "first-2", "again-3", "again-3b"]
    write_logging_board_step(tmp_path, 0, [_sample("restart", ["x"])])  # started over from scratch
    assert _steps(path) == [0] and [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_torn_last_line_from_a_crash_is_dropped_before_the_next_step(tmp_path):
    path = write_logging_board_step(tmp_path, 1, [_sample("a", ["x"])])
    whole = path.read_bytes()
    line = json.dumps({"step": 2, "prompt": "the writer was killed here"}).encode()
    with open(path, "ab") as file:
        file.write(line[: len(line) // 2])  # what a kill mid-append can leave
    assert read_logging_board(tmp_path) == {1: _strict_lines_of(whole)}  # the reader skips it, as the viewer does

    write_logging_board_step(tmp_path, 2, [_sample("b", ["y"])])
    assert _steps(path) == [1, 2] and path.read_bytes().startswith(whole)
    with open(path, "ab") as file:
        file.write(line[:10])
    write_logging_board_step(tmp_path, 3, [_sample("c", ["z"])])  # a torn line of an earlier step goes too
    assert _steps(path) == [1, 2, 3]


def _strict_lines_of(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_an_error_while_building_a_step_leaves_the_file_as_it_was(tmp_path):
    path = write_logging_board_step(tmp_path, 3, [_sample("old", ["x"])])
    before = path.read_bytes()

    def crashing():
        yield _sample("new", ["y"])
        raise RuntimeError("worker died")

    for step in (3, 4):  # a rewrite of step 3 (resume) and a new step 4
        with pytest.raises(RuntimeError, match="worker died"):
            write_logging_board_step(tmp_path, step, crashing())
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_failed_rewrite_on_resume_leaves_the_file_and_no_temporary(tmp_path, monkeypatch):
    path = write_logging_board_step(tmp_path, 5, [_sample("a", ["x"])])
    before = path.read_bytes()

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_logging_board_step(tmp_path, 5, [_sample("b", ["y"])])
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]


def test_reading_a_board_root_finds_its_one_run_and_refuses_to_guess_between_several(tmp_path):
    write_logging_board_step(tmp_path, 1, [_sample("a", ["x"])], experiment="demo")
    assert list(read_logging_board(tmp_path)) == [1]  # the board root, as the demo reads it
    assert list(read_logging_board(tmp_path / "demo")) == [1]  # or the run folder itself
    assert read_logging_board(tmp_path / "missing") == {}
    write_logging_board_step(tmp_path, 1, [_sample("b", ["y"])], experiment="other")
    with pytest.raises(ValueError, match=r"several runs \(demo, other\); pass experiment="):
        read_logging_board(tmp_path)
    assert [r["uid"] for r in read_logging_board(tmp_path, "other")[1]] == ["b"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_an_experiment_name_must_be_one_folder(tmp_path, name):
    with pytest.raises(ValueError, match="must be one folder name"):
        write_logging_board_step(tmp_path, 1, [_sample("a", ["x"])], experiment=name)
