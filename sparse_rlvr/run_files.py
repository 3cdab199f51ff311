"""Files of resumable runs: atomic writes, and a settings fingerprint that a resume must match."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name, then rename: readers never see a half-written file."""
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    os.replace(temporary, path)


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
