"""The architecture as a test: imports only point down (workflows -> parts -> core).

Read from the source with `ast`, so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sparse_rlvr"

FORBIDDEN = {
    "core": {"training", "analysis", "interventions", "workflows"},
    "training": {"analysis", "interventions", "workflows"},
    "analysis": {"training", "interventions", "workflows"},
    "interventions": {"training", "analysis", "workflows"},
}
"""Room -> rooms it must not import: the core imports no part, parts never import each other or the workflows."""


def imported_rooms(path: Path) -> set[str]:
    """Top-level rooms of sparse_rlvr (core, training, ...) that a module imports, anywhere in its body."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "sparse_rlvr" and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_imports_point_down(room: str) -> None:
    modules = sorted((PACKAGE / room).rglob("*.py"))
    assert modules, f"sparse_rlvr/{room} is empty"
    wrong = {str(m.relative_to(PACKAGE)): sorted(imported_rooms(m) & FORBIDDEN[room]) for m in modules}
    assert not {m: r for m, r in wrong.items() if r}, f"{room} imports upward or sideways"


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sparse_rlvr.analysis.runner import run_shift\n    import sparse_rlvr.workflows.demo\n")
    assert imported_rooms(module) == {"analysis", "workflows"}
