"""run_files: the one atomic write (bytes or a streaming writer) and the resume fingerprint."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparse_rlvr.core.run_files import atomic_write, atomic_write_with, check_or_write_fingerprint


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "a.json"
    atomic_write(path, b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_writer_that_dies_midway_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "shard.parquet"
    atomic_write(path, b"finished before")

    def dies(file):
        file.write(b"PAR1 half")
        raise KeyboardInterrupt  # BaseException too: a Ctrl-C mid-write must not leave a .partial behind

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(path, dies)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(tmp_path / "never.parquet", dies)
    assert [p.name for p in tmp_path.iterdir()] == ["shard.parquet"] and path.read_bytes() == b"finished before"


def test_a_streaming_writer_gets_a_file_pyarrow_can_write_to(tmp_path):
    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", None]})
    atomic_write_with(tmp_path / "t.parquet", lambda file: pq.write_table(table, file, compression="zstd"))
    assert pq.read_table(tmp_path / "t.parquet").equals(table)


def test_the_fingerprint_is_written_once_and_a_different_one_is_refused(tmp_path):
    out = tmp_path / "run"
    check_or_write_fingerprint(out, {"model": "m", "top_p": 1.0})
    check_or_write_fingerprint(out, {"model": "m", "top_p": 1.0})  # the same settings resume
    assert json.loads((out / "config.json").read_text()) == {"model": "m", "top_p": 1.0}
    with pytest.raises(ValueError, match=r"different settings \(top_p\); use another --out"):
        check_or_write_fingerprint(out, {"model": "m", "top_p": 0.9})
