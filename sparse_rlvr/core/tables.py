"""Read prompt/response files (JSONL, parquet, verl's parquet format) into token sequences."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sparse_rlvr.core.errors import MissingFileError, UserError
from sparse_rlvr.core.inputs import require_columns


@dataclass(frozen=True)
class Sequence:
    """One prompt and its response as token ids; the analysed positions are the response's."""

    sample_id: int
    prompt_ids: list[int]
    response_ids: list[int]


def read_table(path: str | Path) -> pd.DataFrame:
    """A JSONL (.jsonl/.json) or parquet file as a DataFrame, with errors that say what to fix."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"data file {path} does not exist; pass --data with a JSONL or parquet file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".jsonl", ".json"):
        try:
            return pd.read_json(path, lines=path.suffix == ".jsonl")
        except ValueError as error:
            raise UserError(f"{path} is not valid JSON lines: {error}") from error
    raise UserError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json or .parquet")


def require_column(table: pd.DataFrame, column: str, path: str | Path, option: str) -> None:
    """Raise naming the file, the missing column, the columns found and the option to change."""
    require_columns([str(c) for c in table.columns], {column: option}, path)


def prompt_ids(tokenizer: Any, prompt: Any, chat_template: bool) -> list[int]:
    """Token ids of a prompt given as text, token ids, or a chat list, templated as the model was trained.

    Token ids are used as they are. A chat list ([{"role": ..., "content": ...}], verl's format) always goes through the chat
    template with the generation prompt; plain text does too when `chat_template` is set and the
    tokenizer has one (wrapped as one user message), else it is tokenised as is.
    """
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return list(prompt)
    if isinstance(prompt, str) and not (chat_template and tokenizer.chat_template):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if not tokenizer.chat_template:
        raise UserError("prompts are chat messages but the tokenizer has no chat template; give text prompts")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


def token_list(value: Any) -> list[int]:
    """Token ids stored as a list, an array or a JSON string."""
    if isinstance(value, str):
        value = json.loads(value)
    return [int(v) for v in value]


def plain(value: Any) -> Any:
    """Parquet gives chat lists and id lists as numpy arrays: make them plain Python."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def check_prompts(prompts: list[Any], path: str | Path, option: str) -> None:
    """Each prompt is text, a list of token ids or a chat list of {"role", "content"}; else name the row and type."""
    for row, prompt in enumerate(prompts):
        if isinstance(prompt, str) and prompt:
            continue
        if isinstance(prompt, list) and prompt and (
            all(isinstance(t, int) for t in prompt) or all(isinstance(m, dict) and "content" in m for m in prompt)
        ):
            continue
        raise UserError(
            f"{path} row {row}: the prompt is {type(prompt).__name__} {str(prompt)[:60]!r}, not text, token ids or "
            f"chat messages; name the prompt column with {option}"
        )


def verl_rl_schema(extra_info: list[tuple[str, Any]]) -> Any:
    """The arrow schema of verl's RL parquet rows (what its RLHFDataset reads): data_source, a chat
    prompt, ability, reward_model {style, ground_truth}, and `extra_info` with the given fields.

    Explicit rather than inferred, so every file of a dataset has one schema (verl concatenates them).
    """
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(message)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct(extra_info)),
    ])


def write_verl_parquet(rows: list[dict[str, Any]], path: str | Path, schema: Any) -> Path:
    """Write verl RL rows to one parquet file atomically (a reader never sees half a file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sparse_rlvr.core.run_files import atomic_write_with

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows), schema=schema)
    atomic_write_with(path, lambda file: pq.write_table(table, file))
    return path

