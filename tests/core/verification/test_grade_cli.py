"""``sparse-rlvr grade`` writes scores and reasons next to each row and prints a summary."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sparse_rlvr.cli import app


def test_grade_jsonl(tmp_path: Path) -> None:
    rows = [
        {"response": "\\boxed{\\frac{2}{4}}", "reward_model": {"ground_truth": "0.5"}},
        {"response": "Answer: 7", "reward_model": {"ground_truth": "8"}},
        {"response": "no idea", "reward_model": {"ground_truth": "8"}},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["grade", str(path), "--answer-column", "reward_model.ground_truth"])
    assert result.exit_code == 0, result.output
    graded = [json.loads(line) for line in (tmp_path / "r.graded.jsonl").read_text().splitlines()]
    assert [g["grade_reason"] for g in graded] == ["correct", "wrong", "no_answer"]
    assert "accuracy 0.3333" in result.output
