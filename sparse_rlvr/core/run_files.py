"""Files of resumable runs: atomic writes, durable appends, and a settings fingerprint that a resume must match."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write_with`)."""
    atomic_write_with(path, lambda file: file.write(data))


def atomic_write_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temporary file, flush it to disk, then rename it to `path`.

    Readers never see a half-written file, and a failure (in `write` too) leaves the previous
    file (or none) and no temporary file behind. `write` gets a binary file object, so writers
    that stream (``pyarrow.parquet.write_table(table, file)``, a line-by-line copy) need not hold
    the whole file in memory.
    """
    temporary = path.with_name(path.name + ".partial")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def append_durably(path: Path, data: bytes) -> None:
    """Append `data` to `path` (created if missing) in one write, then flush it to disk.

    A crash can at worst leave a torn tail of `data`, never damage what was there before; a
    reader of line-oriented files drops a last line without its newline.
    """
    created = not path.exists()
    with open(path, "ab") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    if created:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_or_write_fingerprint(out_dir: Path, fingerprint: dict) -> None:
    """Record the settings in out_dir/config.json, or refuse to resume a run made with others."""
    path = out_dir / "config.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != fingerprint:
            changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
            raise ValueError(
                f"{out_dir} holds a run with different settings ({', '.join(changed)}); "
                "use another --out, or delete the directory to start over"
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(fingerprint, indent=2).encode())
