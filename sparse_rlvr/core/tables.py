"""Read prompt/response files (JSONL, parquet, verl's parquet format) into token sequences."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


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
        raise FileNotFoundError(f"data file {path} does not exist; pass --data with a JSONL or parquet file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".jsonl", ".json"):
        try:
            return pd.read_json(path, lines=path.suffix == ".jsonl")
        except ValueError as error:
            raise ValueError(f"{path} is not valid JSON lines: {error}") from error
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json or .parquet")


def require_column(table: pd.DataFrame, column: str, path: str | Path, option: str) -> None:
    """Raise naming the file, the missing column, the columns found and the option to change."""
    if column not in table.columns:
        raise KeyError(
            f"{path} has no column {column!r} (columns found: {', '.join(map(str, table.columns))}); "
            f"name the right one with {option}"
        )


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
        raise ValueError("prompts are chat messages but the tokenizer has no chat template; give text prompts")
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
