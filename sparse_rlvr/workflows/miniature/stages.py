"""Resumable stages of a run directory: a stage that finished leaves OUT/stages/<name>.json and is skipped.

Each stage's own outputs are written by the tools it calls (verl's checkpoints, `shift` and
`cross-sample` shards, which resume by themselves); the marker is written last and atomically,
so an interrupted stage reruns and picks up whatever its tool had kept. The run's settings are
pinned in OUT/settings.json: a rerun with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparse_rlvr.core.errors import UserError
from sparse_rlvr.core.run_files import atomic_write


class StageDir:
    """The run directory's stage markers and pinned settings."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        self.out = out
        self.markers = out / "stages"
        self._pin(settings)

    def _pin(self, settings: dict[str, Any]) -> None:
        path = self.out / "settings.json"
        if path.exists():
            pinned = json.loads(path.read_text())
            if pinned != settings:
                changed = sorted(k for k in set(pinned) | set(settings) if pinned.get(k) != settings.get(k))
                raise UserError(f"{self.out} holds a run with other settings ({', '.join(changed)}); "
                                "use another --out, or delete it to start over")
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(settings, indent=2) + "\n").encode())

    def done(self, name: str) -> dict[str, Any] | None:
        """The result a finished stage recorded, or None if it has not finished."""
        path = self.markers / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def run(self, name: str, work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """(result, ran): the recorded result of a finished stage, else `work()`'s, recorded with its wall time."""
        recorded = self.done(name)
        if recorded is not None:
            return recorded, False
        start = time.perf_counter()
        result = work() | {"wall_s": round(time.perf_counter() - start, 1)}
        self.markers.mkdir(parents=True, exist_ok=True)
        atomic_write(self.markers / f"{name}.json", (json.dumps(result, indent=2) + "\n").encode())
        return result, True
