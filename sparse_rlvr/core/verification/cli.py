"""``sparse-rlvr grade FILE``: grade a JSONL or parquet file of responses with the math verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _read(path: Path) -> list[dict]:
    """Rows of a ``.jsonl`` or ``.parquet`` file as dicts."""
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(rows: list[dict], path: Path) -> None:
    if path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path)
        return
    import json

    path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))


def _gold(row: dict, column: str) -> object:
    """The gold answer from ``column``; ``reward_model.ground_truth`` style dotted paths work."""
    value: object = row
    for key in column.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def grade(
    file: Annotated[Path, typer.Argument(help="JSONL or parquet file with one response per row.", exists=True)],
    response_column: Annotated[str, typer.Option(help="Column holding the model's response text.")] = "response",
    answer_column: Annotated[
        str, typer.Option(help="Column with the gold answer; dotted paths like reward_model.ground_truth work.")
    ] = "ground_truth",
    output: Annotated[Path | None, typer.Option(help="Output file (default: FILE with .graded before the suffix).")] = None,
    deadline_s: Annotated[float, typer.Option(help="Hard time limit per answer, seconds.")] = 5.0,
    workers: Annotated[int, typer.Option(help="Verifier worker processes.")] = 2,
    chunk: Annotated[int, typer.Option(help="Rows graded per progress-bar step.")] = 64,
) -> None:
    """Grade math responses against gold answers; writes score, acc, pred, reason per row and a summary."""
    from collections import Counter

    from rich.console import Console
    from rich.progress import Progress

    from sparse_rlvr.core.verification.math import MathRewardConfig, score_batch

    config = MathRewardConfig(deadline_s=deadline_s, num_workers=workers)
    rows = _read(file)
    out = output or file.with_name(f"{file.stem}.graded{file.suffix}")
    with Progress() as progress:
        task = progress.add_task("grading", total=len(rows))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            results = score_batch([r.get(response_column) for r in part], [_gold(r, answer_column) for r in part], [r.get("extra_info") for r in part], config)
            for row, result in zip(part, results):
                row.update({f"grade_{k}": v for k, v in result.items()})
            progress.advance(task, len(part))
    _write(rows, out)
    reasons = Counter(r["grade_reason"] for r in rows)
    accuracy = sum(r["grade_acc"] for r in rows) / max(len(rows), 1)
    Console().print(f"graded {len(rows)} rows -> {out}\naccuracy {accuracy:.4f}  reasons {dict(reasons)}")
