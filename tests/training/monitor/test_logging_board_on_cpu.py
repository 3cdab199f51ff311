"""RL Logging Board dump: viewer schema, strict JSONL round trip, and atomic per-step files."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from sparse_rlvr.training.monitor.logging_board import (
    EXTRA_KEYS,
    VIEWER_KEYS,
    read_logging_board,
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
    return [json.loads(line, parse_constant=reject) for line in path.read_text(encoding="utf-8").splitlines()]


def test_round_trip_has_the_viewer_schema_and_our_fields(tmp_path):
    hostile = ["<script>", '"q"', " é", "\n", "\ud800"]  # markup, quotes, non-ASCII, newline, lone surrogate
    a = _sample("g0", hostile, reward=1.0, weights=[1.0, 1.1, 1.2, 0.9, 1.0], advantages=[0.5] * 5)
    b = _sample("g1", ["x", "y"], reward=0.0, logprobs=[-0.5, float("nan")], token_rewards=[0.25, -0.75])
    path = write_logging_board_step(tmp_path / "run", 7, [a, b])

    assert path == tmp_path / "run" / "step_7.jsonl"
    first, second = _strict_lines(path)
    for record, sample in ((first, a), (second, b)):
        assert set(VIEWER_KEYS) | set(EXTRA_KEYS) <= set(record)
        assert record["step"] == 7 and record["uid"] == sample.uid and record["reward"] == sample.reward
        assert record["prompt"] == sample.prompt and record["response"] == sample.response
        assert record["response_tokens"] == sample.tokens and record["token_ids"] == sample.token_ids
        n = len(sample.tokens)
        assert all(len(record[k]) == n for k in ("logprobs", "ref_logprobs", "token_rewards", "entropy", "js"))
        assert record["js"] == sample.js and record["ref_logprobs"] == sample.ref_logprobs
    assert first["weights"] == a.weights and first["advantages"] == a.advantages
    assert first["token_rewards"] == [0.0, 0.0, 0.0, 0.0, 1.0]  # outcome reward on the last token (verl)
    assert second["token_rewards"] == [0.25, -0.75] and second["weights"] is None
    assert second["logprobs"] == [-0.5, None]  # NaN is not JSON: written as null

    # What the viewer computes from a line (its load_log_file): aligned per-token arrays.
    log_ratio = np.array(first["logprobs"]) - np.array(first["ref_logprobs"])
    assert log_ratio.shape == (len(first["response_tokens"]),) and len(first["token_rewards"]) == len(log_ratio)
    assert read_logging_board(tmp_path / "run") == {7: [first, second]}


def test_one_file_per_step_and_a_rewrite_replaces_the_step(tmp_path):
    write_logging_board_step(tmp_path, 1, [_sample("a", ["x"])])
    write_logging_board_step(tmp_path, 2, [_sample("b", ["y"]), _sample("c", ["z"])])
    write_logging_board_step(tmp_path, 2, [_sample("d", ["w"])])  # step 2 again, e.g. after a resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_1.jsonl", "step_2.jsonl"]
    steps = read_logging_board(tmp_path)
    assert [r["uid"] for r in steps[1]] == ["a"] and [r["uid"] for r in steps[2]] == ["d"]


def test_an_error_mid_write_leaves_no_partial_file(tmp_path):
    write_logging_board_step(tmp_path, 3, [_sample("old", ["x"])])
    before = (tmp_path / "step_3.jsonl").read_bytes()

    def crashing():
        yield _sample("new", ["y"])  # this line reaches the temp file, then the writer dies
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        write_logging_board_step(tmp_path, 3, crashing())
    with pytest.raises(RuntimeError, match="worker died"):
        write_logging_board_step(tmp_path, 4, crashing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_3.jsonl"]  # no temp file, no step_4
    assert (tmp_path / "step_3.jsonl").read_bytes() == before


def test_a_failed_rename_leaves_no_partial_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_logging_board_step(tmp_path, 5, [_sample("a", ["x"])])
    assert list(tmp_path.iterdir()) == []


def test_empty_response_and_no_samples(tmp_path):
    path = write_logging_board_step(tmp_path, 0, [_sample("empty", [], reward=math.inf)])
    (record,) = _strict_lines(path)
    assert record["response_tokens"] == [] and record["token_rewards"] == [] and record["reward"] is None
    assert write_logging_board_step(tmp_path, 9, []).read_text() == ""
