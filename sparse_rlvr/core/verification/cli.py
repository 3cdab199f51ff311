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

    from sparse_rlvr.core.errors import UserError

    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number}: not valid JSON ({error.msg}); expected one JSON object per line") from None
        if not isinstance(rows[-1], dict):
            raise UserError(f"{path}:{number}: expected a JSON object (one row per line), got {type(rows[-1]).__name__}")
    return rows


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


def _check_input(file: Path, rows: list[dict], response_column: str, answer_column: str, output: Path) -> None:
    """Refuse, before grading, what would grade every row as an error (a silent 0): no rows, a missing column."""
    from sparse_rlvr.core.errors import UserError
    from sparse_rlvr.core.inputs import require_columns

    if not rows:
        raise UserError(f"{file} has no rows; give a file with one response per row")
    columns = list(dict.fromkeys(key for row in rows[:1000] for key in row))
    require_columns(columns, {response_column: "--response-column"}, file)
    require_columns(columns, {answer_column.split(".")[0]: "--answer-column"}, file)
    if all(_gold(row, answer_column) is None for row in rows):
        raise UserError(f"{file}: no row has a gold answer at {answer_column!r} (columns found: {', '.join(columns)}); "
                        "name it with --answer-column, e.g. reward_model.ground_truth")
    if output.is_dir():
        raise UserError(f"--output {output} is a directory; give a file path such as {output / file.name}")
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: directory {output.parent} does not exist; create it or give another path")


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

    from sparse_rlvr.core.errors import UserError, check_not_all_failed
    from sparse_rlvr.core.inputs import check_table_file

    if chunk < 1:
        raise UserError(f"--chunk must be >= 1, got {chunk}; it is the rows graded per progress step")
    try:
        config = MathRewardConfig(deadline_s=deadline_s, num_workers=workers)
    except ValueError as error:
        raise UserError(f"{error} (--deadline-s, --workers)") from error
    rows = _read(check_table_file(file, "FILE"))
    out = output or file.with_name(f"{file.stem}.graded{file.suffix}")
    _check_input(file, rows, response_column, answer_column, out)
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
    for reason, fix in (("error", f"check that --response-column {response_column} holds response text and "
                                  f"--answer-column {answer_column} the gold answers"),
                        ("timeout", f"raise --deadline-s (now {deadline_s:g})")):
        check_not_all_failed([r["grade_reason"] for r in rows], reason, f"that is no accuracy; {fix} (rows written to {out})")
    Console().print(f"graded {len(rows)} rows -> {out}\naccuracy {accuracy:.4f}  reasons {dict(reasons)}")
