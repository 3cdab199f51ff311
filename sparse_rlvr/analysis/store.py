"""The on-disk layout of a run: per-token parquet shards written atomically, for resume.

    DIR/config.json                     settings that determine the results (checked on resume)
    DIR/<policy>/tokens/shard-00000.parquet   per-token results of shard 0
    DIR/<policy>/tokens/shard-00000.json      its counts (empty, truncated, ...)

A shard whose parquet file exists is finished (it is renamed into place only when complete), so
an interrupted run redoes at most the shards that were in flight.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.core.run_files import atomic_write, atomic_write_with, check_or_write_fingerprint


def check_or_write_config(config: ShiftConfig) -> None:
    """Refuse to resume into a directory made with different settings."""
    check_or_write_fingerprint(config.out_dir, config.fingerprint())


def policy_dir(config: ShiftConfig, policy_index: int) -> Path:
    """Where one policy checkpoint's results go: DIR/policy-<i>-<name>."""
    name = Path(config.policies[policy_index].rstrip("/")).name.replace("/", "_")
    return config.out_dir / f"policy-{policy_index:02d}-{name}"


def shard_path(directory: Path, index: int) -> Path:
    return directory / "tokens" / f"shard-{index:05d}.parquet"


def is_done(directory: Path, index: int) -> bool:
    return shard_path(directory, index).exists()


def write_shard(directory: Path, index: int, tokens: pa.Table, counts: dict[str, int]) -> None:
    """Write counts, then the parquet file (its appearance marks the shard finished)."""
    path = shard_path(directory, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path.with_suffix(".json"), json.dumps(counts).encode())
    atomic_write_with(path, lambda file: pq.write_table(tokens, file, compression="zstd"))


def read_tokens(directory: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All finished shards of one policy, in shard order."""
    paths = sorted((directory / "tokens").glob("shard-*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no finished shards under {directory / 'tokens'}")
    return pd.concat([pd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)


def read_counts(directory: Path) -> dict[str, int]:
    """Counts summed over finished shards."""
    total: dict[str, int] = {}
    for path in sorted((directory / "tokens").glob("shard-*.parquet")):
        for key, value in json.loads(path.with_suffix(".json").read_text()).items():
            total[key] = total.get(key, 0) + value
    return total
