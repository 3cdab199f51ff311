"""The paper's math data as verl RL parquet: ``sparse-rlvr prepare-data DATASET --input PATH --output OUT.parquet``.

Reads the datasets in their published column layouts (local parquet / jsonl / json files, or a
hub id through ``datasets.load_dataset`` where a hub is reachable) and writes rows of verl's
``RLHFDataset`` schema, one prompt template for all of them (DAPO's, see ``DAPO_PREFIX``)::

    data_source   "math_dapo" (train) | "aime24" | "aime25" | "amc23" | "math500"
    prompt        [{"role": "user", "content": DAPO_PREFIX + problem + DAPO_SUFFIX}]
    ability       "math"
    reward_model  {"style": "rule", "ground_truth": answer}
    extra_info    {"split", "index", "id", "problem", "subject", "level"}

Every file has exactly this arrow schema (``subject``/``level`` null where a dataset has none),
so verl can concatenate the four validation files of a recipe into one dataset.

Columns relied on (from each dataset card / viewer and code that loads it):

==============  ============================================  ===========================================
name            hub id (config, split)                        columns read
==============  ============================================  ===========================================
dapo_math_17k   BytedTsinghua-SIA/DAPO-Math-17k (train)       prompt (chat list, DAPO template),
                                                              reward_model.ground_truth, extra_info.index
aime24          HuggingFaceH4/aime_2024 (train)               problem, answer, id
                also Maxwell-Jia/AIME_2024                    Problem, Answer, ID
                also BytedTsinghua-SIA/AIME-2024              as DAPO-Math-17k (each problem 32x)
aime25          opencompass/AIME2025 (AIME2025-I, -II; test)  question, answer
amc23           zwhe99/amc23 (test)                           question, answer (a float: 27.0), id
math500         HuggingFaceH4/MATH-500 (test)                 problem, answer, subject, level, unique_id
==============  ============================================  ===========================================

Rows whose problem text repeats (DAPO-Math-17k holds each of its ~17k prompts ~100 times) are
kept once, in first-seen order; rows with an empty problem or answer are skipped and counted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from sparse_rlvr.core.errors import UserError
from sparse_rlvr.core.tables import verl_rl_schema, write_verl_parquet

DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'
BATCH_ROWS = 65_536
PROGRESS_MIN_ROWS = 20_000
"""Show a progress bar when the inputs hold at least this many rows (DAPO-Math-17k: ~1.8M)."""


def format_prompt(problem: str) -> str:
    """The DAPO prompt around `problem` (DAPO-Math-17k's own rows are exactly this)."""
    return f"{DAPO_PREFIX}{problem}{DAPO_SUFFIX}"


@dataclass(frozen=True)
class Layout:
    """Where one published dataset keeps the problem, the answer and optional metadata.

    ``kind="verl"``: rows already in verl's format (chat ``prompt``, ``reward_model.ground_truth``).
    """

    source: str
    problem: str
    answer: str
    id: str | None = None
    subject: str | None = None
    level: str | None = None
    kind: str = "flat"

    @property
    def required(self) -> tuple[str, ...]:
        return (self.problem, self.answer)

    @property
    def columns(self) -> list[str]:
        extra = ("extra_info",) if self.kind == "verl" else (self.id, self.subject, self.level)
        return [c for c in (*self.required, *extra) if c]

    def describe(self) -> str:
        return f"{self.source} ({', '.join(self.required)})"


VERL_DAPO = Layout("BytedTsinghua-SIA/DAPO-Math-17k", "prompt", "reward_model", kind="verl")
VERL_AIME = Layout("BytedTsinghua-SIA/AIME-2024", "prompt", "reward_model", kind="verl")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset ``prepare-data`` knows: its output labels and the layouts it accepts (first match wins)."""

    name: str
    data_source: str
    split: str
    hub_id: str
    layouts: tuple[Layout, ...]
    hub_configs: tuple[str | None, ...] = (None,)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        # data_source "math_dapo" as in the original rows (verl's default scorer knows it too)
        DatasetSpec("dapo_math_17k", "math_dapo", "train", "BytedTsinghua-SIA/DAPO-Math-17k", (VERL_DAPO,)),
        DatasetSpec(
            "aime24", "aime24", "test", "HuggingFaceH4/aime_2024",
            (
                Layout("HuggingFaceH4/aime_2024", "problem", "answer", id="id"),
                Layout("Maxwell-Jia/AIME_2024", "Problem", "Answer", id="ID"),
                VERL_AIME,
            ),
        ),
        DatasetSpec(
            "aime25", "aime25", "test", "opencompass/AIME2025",
            (Layout("opencompass/AIME2025", "question", "answer", id="id"),),
            hub_configs=("AIME2025-I", "AIME2025-II"),
        ),
        DatasetSpec("amc23", "amc23", "test", "zwhe99/amc23", (Layout("zwhe99/amc23", "question", "answer", id="id"),)),
        DatasetSpec(
            "math500", "math500", "test", "HuggingFaceH4/MATH-500",
            (Layout("HuggingFaceH4/MATH-500", "problem", "answer", id="unique_id", subject="subject", level="level"),),
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The dataset called `name`; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


# --------------------------------------------------------------------------- reading


@dataclass
class InputTable:
    """One input (a file, or one config/split of a hub dataset) read in batches of row dicts."""

    label: str
    columns: list[str]
    total: int | None
    batches: Iterator[list[dict]]


def _is_hub_id(source: str) -> bool:
    """``owner/name`` that is neither an existing path nor a data file's name."""
    if Path(source).expanduser().exists() or re.search(r"\.(parquet|jsonl|json)$", source):
        return False
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", source))


def _read_parquet(path: Path) -> InputTable:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    columns = parquet.schema_arrow.names
    return InputTable(str(path), columns, parquet.metadata.num_rows, (b.to_pylist() for b in parquet.iter_batches(BATCH_ROWS)))


def _jsonl_row(path: Path, number: int, line: str) -> dict:
    """Line `number` of a JSONL file as a row object; ValueError naming file, line and what was expected."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{number}: not valid JSON ({error}); expected one JSON object (a row) per line") from None
    if not isinstance(row, dict):
        raise ValueError(
            f"{path}:{number}: expected a JSON object (one row per line, e.g. {{\"problem\": ..., \"answer\": ...}}), "
            f"got a JSON {type(row).__name__}: {line.strip()[:80]}"
        )
    return row


def _read_jsonl(path: Path) -> InputTable:
    with path.open(encoding="utf-8") as handle:
        first = next(((number, line) for number, line in enumerate(handle, 1) if line.strip()), None)
    columns = list(_jsonl_row(path, *first)) if first else []
    with path.open(encoding="utf-8") as handle:
        total = sum(1 for line in handle if line.strip())

    def batches() -> Iterator[list[dict]]:
        batch: list[dict] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                batch.append(_jsonl_row(path, number, line))
                if len(batch) == BATCH_ROWS:
                    yield batch
                    batch = []
        if batch:
            yield batch

    return InputTable(str(path), columns, total, batches())


def _read_json(path: Path) -> InputTable:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise ValueError(f"{path}: columns of different lengths {sorted(lengths)}")
        data = [dict(zip(data, values)) for values in zip(*data.values())]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise ValueError(f"{path}: expected a JSON list of row objects (or an object of equal-length column lists)")
    columns = list(dict.fromkeys(key for row in data[:100] for key in row))
    return InputTable(str(path), columns, len(data), iter([data] if data else []))


def _read_hub(source: str, spec: DatasetSpec) -> list[InputTable]:
    """Every config/split of a hub dataset (both AIME2025 configs for aime25's own hub id)."""
    import datasets

    configs = spec.hub_configs if source == spec.hub_id else (None,)
    tables = []
    for config in configs:
        try:
            loaded = datasets.load_dataset(source, config)
        except Exception as error:  # no hub, gated, renamed: say what to do instead
            raise RuntimeError(
                f"could not load {source!r} (config {config}) from the hub: {error}\n"
                "download it elsewhere and pass the local file(s) with --input"
            ) from error
        for split, part in loaded.items():

            def batches(part=part) -> Iterator[list[dict]]:
                for columns in part.iter(batch_size=BATCH_ROWS):
                    yield [dict(zip(columns, values)) for values in zip(*columns.values())]

            tables.append(InputTable(f"{source}:{config or 'default'}:{split}", list(part.column_names), len(part), batches()))
    return tables


def read_inputs(sources: list[str], spec: DatasetSpec) -> list[InputTable]:
    """Open every input; local ``.parquet``/``.jsonl``/``.json`` files, or hub ids."""
    tables = []
    for source in sources:
        path = Path(source).expanduser()
        if _is_hub_id(source):
            tables.extend(_read_hub(source, spec))
        elif not path.is_file():
            raise FileNotFoundError(f"{source}: no such file (and not a hub id like {spec.hub_id})")
        elif path.suffix == ".parquet":
            tables.append(_read_parquet(path))
        elif path.suffix == ".jsonl":
            tables.append(_read_jsonl(path))
        elif path.suffix == ".json":
            tables.append(_read_json(path))
        else:
            raise ValueError(f"{source}: unsupported file type {path.suffix!r}; use .parquet, .jsonl or .json")
    return tables


def pick_layout(table: InputTable, spec: DatasetSpec) -> Layout:
    """The first of the dataset's layouts whose required columns the input has; else a ValueError naming them."""
    for layout in spec.layouts:
        if all(column in table.columns for column in layout.required):
            return layout
    wanted = "; ".join(
        f"{layout.describe()}: no column {', '.join(repr(c) for c in layout.required if c not in table.columns)}"
        for layout in spec.layouts
    )
    raise ValueError(f"{spec.name}: {table.label} has columns {table.columns}; expected the layout of {wanted}")


# --------------------------------------------------------------------------- converting


def answer_text(value: Any) -> str:
    """The ground truth as a string: 27.0 -> "27", 204 -> "204", LaTeX strings stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _level(value: Any) -> int | None:
    """MATH's difficulty 1..5 from an int or a "Level 5" string; None when absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    digits = re.search(r"\d+", str(value))
    return int(digits.group()) if digits else None


def _chat_text(prompt: Any) -> str:
    """The last user message of a chat prompt (a list of {"role", "content"}), or a plain string."""
    if isinstance(prompt, str):
        return prompt
    messages = [m for m in (prompt if prompt is not None else []) if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"] or messages
    return str(users[-1].get("content") or "") if users else ""


def _verl_problem(row: dict, where: str) -> str:
    """The problem inside a DAPO-template prompt (or extra_info.raw_problem, as in AIME-2024)."""
    content = _chat_text(row.get("prompt"))
    if content.startswith(DAPO_PREFIX) and content.endswith(DAPO_SUFFIX):
        return content[len(DAPO_PREFIX) : len(content) - len(DAPO_SUFFIX)]
    raw = (row.get("extra_info") or {}).get("raw_problem")
    if raw:
        return str(raw)
    if not content:
        return ""
    raise ValueError(
        f"{where}: the prompt does not follow the DAPO template and there is no extra_info.raw_problem: {content[:80]!r}"
    )


def extract(row: dict, layout: Layout, where: str) -> dict[str, Any]:
    """Problem, answer, id, subject, level of one input row."""
    if layout.kind == "verl":
        extra = row.get("extra_info") or {}
        truth = (row.get("reward_model") or {}).get("ground_truth")
        return {"problem": _verl_problem(row, where).strip(), "answer": answer_text(truth),
                "id": extra.get("index"), "subject": None, "level": None}
    return {
        "problem": str(row.get(layout.problem) or "").strip(),
        "answer": answer_text(row.get(layout.answer)),
        "id": row.get(layout.id) if layout.id else None,
        "subject": row.get(layout.subject) if layout.subject else None,
        "level": _level(row.get(layout.level)) if layout.level else None,
    }


def verl_row(spec: DatasetSpec, index: int, record: dict[str, Any]) -> dict[str, Any]:
    """One output row in verl's RL parquet schema."""
    return {
        "data_source": spec.data_source,
        "prompt": [{"role": "user", "content": format_prompt(record["problem"])}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": record["answer"]},
        "extra_info": {
            "split": spec.split,
            "index": index,
            "id": str(record["id"]),
            "problem": record["problem"],
            "subject": None if record["subject"] is None else str(record["subject"]),
            "level": record["level"],
        },
    }


def output_schema():
    """The arrow schema of every file ``prepare-data`` writes (identical across datasets)."""
    import pyarrow as pa

    return verl_rl_schema([("split", pa.string()), ("index", pa.int64()), ("id", pa.string()),
                           ("problem", pa.string()), ("subject", pa.string()), ("level", pa.int64())])


@dataclass
class PrepareReport:
    """What ``prepare`` read and wrote."""

    dataset: str
    output: Path
    rows_read: int = 0
    rows_written: int = 0
    duplicates: int = 0
    conflicting_answers: int = 0
    skipped_empty: int = 0
    layouts: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        layouts = ", ".join(sorted(set(self.layouts.values())))
        text = (f"{self.dataset}: {self.rows_read} rows read ({layouts} layout), {self.duplicates} duplicates dropped, "
                f"{self.skipped_empty} empty skipped -> {self.output} ({self.rows_written} rows)")
        if self.conflicting_answers:
            text += f"\nwarning: {self.conflicting_answers} repeated problems had a different answer; the first was kept"
        return text


def _progress(total: int):
    """A rich progress bar on stderr for large inputs; a no-op context otherwise."""
    from contextlib import nullcontext

    if total < PROGRESS_MIN_ROWS:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def prepare(dataset: str, inputs: list[str | Path] | str | Path, output: str | Path) -> PrepareReport:
    """Read `inputs` (one file or hub id, or a list of them) in `dataset`'s layout, dedupe, apply the DAPO
    template and write `output` (parquet, atomically: a failure leaves no partial file)."""
    spec = get_spec(dataset)
    inputs = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(source) for source in inputs]
    if not inputs:
        raise ValueError(f"{dataset}: give at least one --input (a local file or a hub id such as {spec.hub_id})")
    tables = read_inputs(inputs, spec)
    for table in tables:
        if table.total == 0:
            raise ValueError(f"{dataset}: {table.label} has no rows")
    layouts = {table.label: pick_layout(table, spec) for table in tables}
    report = PrepareReport(dataset, Path(output), layouts={label: layout.source for label, layout in layouts.items()})
    seen: dict[str, str] = {}
    rows: list[dict] = []
    with _progress(sum(t.total or 0 for t in tables)) as progress:
        task = progress.add_task(f"reading {dataset}", total=sum(t.total or 0 for t in tables)) if progress else None
        for table in tables:
            layout, read_before = layouts[table.label], report.rows_read
            for batch in table.batches:
                for offset, raw in enumerate(batch):
                    position = report.rows_read - read_before + offset
                    record = extract(raw, layout, f"{table.label} row {position}")
                    if record["id"] is None or record["id"] == "":
                        record["id"] = f"{Path(table.label).stem}-{position}"
                    _keep(record, seen, rows, report, spec)
                report.rows_read += len(batch)
                if progress:
                    progress.update(task, advance=len(batch))
            if report.rows_read == read_before:
                raise ValueError(f"{dataset}: {table.label} has no rows")
    if not rows:
        raise ValueError(f"{dataset}: no row has both a problem and an answer ({report.rows_read} rows read)")
    report.rows_written = len(rows)
    write_verl_parquet(rows, output, output_schema())
    return report


def _keep(record: dict, seen: dict[str, str], rows: list[dict], report: PrepareReport, spec: DatasetSpec) -> None:
    """Append the record as a verl row unless its problem was seen before (or it is empty)."""
    if not record["problem"] or not record["answer"]:
        report.skipped_empty += 1
        return
    key = " ".join(record["problem"].split())
    if key in seen:
        report.duplicates += 1
        report.conflicting_answers += seen[key] != record["answer"]
        return
    seen[key] = record["answer"]
    rows.append(verl_row(spec, len(rows), record))


# --------------------------------------------------------------------------- command


def prepare_data_command(
    dataset: Annotated[str, typer.Argument(help=f"Which dataset: {', '.join(DATASETS)}.", show_default=False)],
    inputs: Annotated[
        list[str],
        typer.Option(
            "--input", "-i",
            help="A local .parquet/.jsonl/.json file in the dataset's published layout, or its hub id "
            "(needs a reachable hub). Repeat for several files, e.g. AIME2025-I and -II.",
            show_default=False,
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The parquet file to write.", show_default=False)],
) -> None:
    """Write a math dataset as verl RL parquet, with DAPO's "Answer: $Answer" prompt for every dataset.

    Train set: dapo_math_17k (deduplicated: the hub file repeats each prompt ~100 times).

    Validation sets: aime24, aime25 (both AIME2025 configs), amc23, math500.

    The paper recipes read $SPARSE_RLVR_DATA_DIR/DATASET.parquet (default ~/data/sparse_rlvr), e.g.:

    sparse-rlvr prepare-data aime25 -i aime2025-I.jsonl -i aime2025-II.jsonl -o ~/data/sparse_rlvr/aime25.parquet
    """
    try:
        report = prepare(dataset, inputs, output)
    except (ValueError, FileNotFoundError, RuntimeError) as error:  # printed as `error: ...`, exit 2 (core.errors)
        raise UserError(str(error)) from error
    typer.echo(report.summary())
