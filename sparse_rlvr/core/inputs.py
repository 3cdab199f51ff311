"""Checks of what the user named (models, data files, columns, output directories) before any heavy work.

Each check is cheap (no model loading, no torch import: a data file's header or schema only)
and raises `UserError` naming the option, the offending value and the fix, so a run that
would fail after minutes of model loading fails in a second instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from sparse_rlvr.core.errors import MissingColumnError, MissingFileError, UserError, did_you_mean

HUB_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?(?:/[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?)?$")
"""owner/name (or a bare name) as the Hugging Face hub accepts it: no leading '/', '.', '-', at most one '/'."""
TABLE_SUFFIXES = (".jsonl", ".json", ".parquet")


def check_model(value: str, flag: str) -> None:
    """`value` is a local checkpoint directory (with config.json) or looks like a hub id (owner/name).

    A path that does not exist and cannot be a hub id (absolute, ./relative, two slashes) is
    refused here instead of ending in the hub's traceback about repo id characters.
    """
    path = Path(value).expanduser()
    fix = f"give {flag} a checkpoint directory (with config.json) or a hub id such as Qwen/Qwen2.5-Math-7B"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{flag} {value}: the directory has no config.json, so it is not a checkpoint; {fix}")
        return
    if path.exists():
        raise UserError(f"{flag} {value} is a file, not a checkpoint directory; {fix}")
    if not (HUB_ID.match(value) and len(value) <= 96 and ".." not in value and "--" not in value):
        raise MissingFileError(f"{flag} {value}: no such directory, and not a hub id (owner/name); {fix}")


def check_out_dir(value: str | Path, flag: str = "--out") -> None:
    """`value` is a directory or can be created as one (it is not a file, nor under one; writable)."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {value} is an existing file; give a directory (it is created if missing)")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {value}: {parent} is a file, so the directory cannot be created; give another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {value}: {parent} is not writable; give a directory you can write to")


def check_table_file(value: str | Path, flag: str = "--data") -> Path:
    """An existing, readable .jsonl/.json/.parquet file."""
    path = Path(value).expanduser()
    if not path.exists():
        raise MissingFileError(f"data file {value} does not exist; pass {flag} with a JSONL or parquet file")
    if path.is_dir():
        raise UserError(f"{flag} {value} is a directory; pass {flag} with a JSONL or parquet file")
    if path.suffix not in TABLE_SUFFIXES:
        raise UserError(f"{flag} {value}: unsupported file type {path.suffix!r}; use .jsonl, .json or .parquet")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {value} is not readable (permission denied); check its permissions")
    return path


def table_columns(value: str | Path, flag: str = "--data") -> list[str]:
    """The columns of a data file, from its header (parquet schema, first JSON line); refuses an empty file."""
    path = check_table_file(value, flag)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises ArrowInvalid / OSError for a file that is not parquet
            raise UserError(f"{flag} {value} is not a readable parquet file ({error}); check the file") from error
        if meta.metadata.num_rows == 0:
            raise UserError(f"{flag} {value} has no rows; give a data file with at least one row")
        return list(meta.schema_arrow.names)
    if path.suffix == ".json":
        from sparse_rlvr.core.tables import read_table

        table = read_table(path)
        if table.empty:
            raise UserError(f"{flag} {value} has no rows; give a data file with at least one row")
        return [str(c) for c in table.columns]
    return _jsonl_columns(path, flag)


def _jsonl_columns(path: Path, flag: str) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{flag} {path}:{number}: not valid JSON ({error.msg}); "
                                "expected one JSON object (a row) per line") from None
            if not isinstance(row, dict):
                raise UserError(f"{flag} {path}:{number}: expected a JSON object (one row per line), "
                                f"got a JSON {type(row).__name__}")
            return list(row)
    raise UserError(f"{flag} {path} has no rows; give a data file with at least one row")


def require_columns(columns: list[str], wanted: dict[str, str], path: str | Path) -> None:
    """Each wanted column (name -> option that names it) is among `columns`, else name the ones that exist."""
    for column, option in wanted.items():
        if column not in columns:
            raise MissingColumnError(
                f"{path} has no column {column!r} (columns found: {', '.join(columns)}){did_you_mean(column, columns)}; "
                f"name the right one with {option}"
            )
