"""The shift run's shard files: a shard is finished exactly when its parquet file exists."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparse_rlvr.analysis.store import is_done, read_counts, read_tokens, shard_path, write_shard


def test_finished_shards_read_back_in_order_with_summed_counts(tmp_path):
    write_shard(tmp_path, 1, pa.table({"js": [0.3]}), {"sequences": 1, "empty": 0})
    write_shard(tmp_path, 0, pa.table({"js": [0.1, 0.2]}), {"sequences": 2, "empty": 1})
    assert is_done(tmp_path, 0) and is_done(tmp_path, 1) and not is_done(tmp_path, 2)
    assert read_tokens(tmp_path)["js"].tolist() == [0.1, 0.2, 0.3]
    assert read_counts(tmp_path) == {"sequences": 3, "empty": 1}
    assert sorted(p.name for p in (tmp_path / "tokens").iterdir()) == [
        "shard-00000.json", "shard-00000.parquet", "shard-00001.json", "shard-00001.parquet"]


def test_a_shard_whose_parquet_write_dies_is_not_done_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """The parquet file goes through run_files' atomic write, so a resume redoes exactly this shard."""

    def dies_mid_file(table, where, **kwargs):
        if not hasattr(where, "write"):
            where = open(where, "wb")  # noqa: SIM115 (the old code handed a path)
        where.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", dies_mid_file)
    with pytest.raises(OSError, match="No space left"):
        write_shard(tmp_path, 0, pa.table({"js": [0.1]}), {"sequences": 1})
    assert not is_done(tmp_path, 0)
    assert sorted(p.name for p in shard_path(tmp_path, 0).parent.iterdir()) == ["shard-00000.json"]
