"""Per-token dump of each training step for the "RL Logging Board" viewer: one JSONL file per rank,
appended step by step, under ``<board root>/<experiment>/``.

The viewer (HarderThenHarder/RLLoggingBoard, `rl_logging_board.py`; checked at commit cf56d5d by
``scripts/check_logging_board_compat.py``) is pointed at the board root, lists its folders as runs,
reads every ``*.jsonl`` of the chosen one in ``os.listdir`` order and keeps steps in the order it
first meets them. So each run is one folder and each rank one file written in step order:

    <board root>/<experiment>/rollout_data_rank_0.jsonl

Rank: the driver holds the step's batch gathered from every rank, so it writes one merged file
named for rank 0 (`DRIVER_RANK`); a writer that holds one rank's data passes that rank.

Line schema (one JSON object per response). Keys the viewer reads:
    prompt, response, ground_truth: str; reward: float; step: int; response_tokens: list[str];
    logprobs, ref_logprobs, token_rewards: list[float], one per response token
(`values` is left out: no critic, the viewer then skips that row of its token view). Ours, which
the viewer ignores: uid, token_ids, prompt_ids, entropy, js, weights, advantages, non_finite,
placeholders.

What the viewer cannot take, and what is written instead (`sample_from_record` undoes both):
- A non-finite number (JSON null, or NaN/Infinity) in a numeric list or as the reward breaks its
  numpy arithmetic for the whole step page. NaN is written as 0.0 and +-inf as +-`INF_STAND_IN`
  (500: its exp stays finite, so the viewer's k3 KL exp(r) - 1 - r does not overflow, and
  exp(-500) shows as probability 0); ``non_finite`` records each replaced value, e.g.
  ``{"ref_logprobs": {"3": "-inf"}, "reward": "nan"}``.
- An empty response breaks its sample view (it reads the last token). The text is written as
  `EMPTY_RESPONSE`, and a response without tokens as that one token, with log-probs that both
  mean probability 1 (0.0 and `PLACEHOLDER_REF_LOGPROB`), token reward = the reward; the
  viewer's length curve counts it as 1 token. ``placeholders`` lists the keys that hold one.
- A lone surrogate in a string (no real tokenizer yields one, but a Python str can hold it) is
  written as U+FFFD, the replacement character: the viewer's tables refuse it (pyarrow cannot
  encode it) and the whole step page fails. token_ids keep the exact tokens.

Appends are whole lines with flush + fsync. Before appending step s, lines of steps >= s (a run
resumed from an earlier checkpoint) and a torn last line (a crash mid-append) are dropped, so
writing a step again replaces it and no step is ever listed twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sparse_rlvr.core.run_files import append_durably, atomic_write_with
from sparse_rlvr.training.monitor.samples import ShiftSample

logger = logging.getLogger(__name__)

VIEWER_KEYS = ("prompt", "response", "ground_truth", "reward", "step", "response_tokens", "logprobs", "ref_logprobs",
               "token_rewards")
EXTRA_KEYS = ("uid", "token_ids", "prompt_ids", "entropy", "js", "weights", "advantages", "non_finite", "placeholders")
NUMERIC_LISTS = ("logprobs", "ref_logprobs", "token_rewards", "entropy", "js", "weights", "advantages")
DRIVER_RANK = 0
DEFAULT_EXPERIMENT = "sparse_rlvr"
EMPTY_RESPONSE = "[empty response]"
"""Shown for an empty response (square brackets: the viewer renders text as HTML, <...> would vanish)."""
NAN_STAND_IN = 0.0
INF_STAND_IN = 500.0
PLACEHOLDER_REF_LOGPROB = -1e-300
"""Reference log-prob of the empty-response placeholder token (policy: 0.0). Both say probability 1,
but the log-ratio is not exactly 0: the viewer leaves a whole step off its KL curve when any
sample's mean log-ratio is exactly 0."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def board_file(board_root: str | os.PathLike, experiment: str = DEFAULT_EXPERIMENT, rank: int = DRIVER_RANK) -> Path:
    """``<board_root>/<experiment>/rollout_data_rank_<rank>.jsonl`` (the viewer's own example name)."""
    if not experiment or experiment in (".", "..") or "/" in experiment or os.sep in experiment:
        raise ValueError(f"experiment {experiment!r} must be one folder name (the run's name, e.g. trainer.experiment_name)")
    if int(rank) < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    return Path(board_root) / experiment / f"rollout_data_rank_{int(rank)}.jsonl"


# --------------------------------------------------------------------------- one line


def logging_board_record(sample: ShiftSample, step: int) -> dict[str, Any]:
    """One viewer line; token_rewards default to verl's outcome reward: the score on the last token."""
    token_rewards = sample.token_rewards
    if token_rewards is None:
        token_rewards = [0.0] * len(sample.tokens)
        if token_rewards:
            token_rewards[-1] = sample.reward
    non_finite: dict[str, Any] = {}
    placeholders: list[str] = []
    lists = {"logprobs": sample.logprobs, "ref_logprobs": sample.ref_logprobs, "token_rewards": token_rewards,
             "entropy": sample.entropy, "js": sample.js, "weights": sample.weights, "advantages": sample.advantages}
    lists = {key: _finite_list(values, key, non_finite) for key, values in lists.items()}
    reward = _finite(sample.reward, "reward", non_finite)
    tokens = list(sample.tokens)
    if not tokens:  # one placeholder token, with values in every per-token list the viewer aligns with it
        tokens = [EMPTY_RESPONSE]
        lists |= {"logprobs": [0.0], "ref_logprobs": [PLACEHOLDER_REF_LOGPROB], "token_rewards": [reward]}
        placeholders += ["response_tokens", "logprobs", "ref_logprobs", "token_rewards"]
    response = sample.response
    if not response:
        response = EMPTY_RESPONSE
        placeholders.insert(0, "response")
    return {
        "prompt": sample.prompt, "response": response, "ground_truth": sample.ground_truth or "", "reward": reward,
        "step": int(step), "response_tokens": tokens, "logprobs": lists["logprobs"],
        "ref_logprobs": lists["ref_logprobs"], "token_rewards": lists["token_rewards"],
        "uid": sample.uid, "token_ids": [int(t) for t in sample.token_ids],
        "prompt_ids": None if sample.prompt_ids is None else [int(t) for t in sample.prompt_ids],
        "entropy": lists["entropy"], "js": lists["js"], "weights": lists["weights"], "advantages": lists["advantages"],
        "non_finite": non_finite, "placeholders": placeholders,
    }


def sample_from_record(record: dict[str, Any]) -> ShiftSample:
    """A ShiftSample back from one dumped line: stand-ins and placeholders undone (nulls of older
    dumps come back as NaN)."""
    record = _restored(record)
    floats = lambda values: None if values is None else [math.nan if v is None else float(v) for v in values]  # noqa: E731
    return ShiftSample(
        uid=record["uid"], prompt=record["prompt"], response=record["response"], tokens=record["response_tokens"],
        token_ids=record["token_ids"], logprobs=floats(record["logprobs"]), ref_logprobs=floats(record["ref_logprobs"]),
        entropy=floats(record["entropy"]), js=floats(record["js"]),
        reward=math.nan if record["reward"] is None else float(record["reward"]),
        advantages=floats(record.get("advantages")), weights=floats(record.get("weights")),
        token_rewards=floats(record.get("token_rewards")), prompt_ids=record.get("prompt_ids"),
        ground_truth=record.get("ground_truth") or None,
    )


def _restored(record: dict[str, Any]) -> dict[str, Any]:
    """The record with the values the sample held: placeholders emptied, non-finite values put back."""
    record = dict(record)
    for key in record.get("placeholders") or ():
        record[key] = "" if key == "response" else []
    for key, replaced in (record.get("non_finite") or {}).items():
        if isinstance(replaced, dict):
            values = list(record[key])
            for index, text in replaced.items():
                values[int(index)] = float(text)
            record[key] = values
        else:
            record[key] = float(replaced)
    return record


def _finite(value: float, key: str, non_finite: dict[str, Any]) -> float:
    value = float(value)
    if math.isfinite(value):
        return value
    non_finite[key] = repr(value)
    return _stand_in(value)


def _finite_list(values: Iterable[float] | None, key: str, non_finite: dict[str, Any]) -> list[float] | None:
    if values is None:
        return None
    out = [float(v) for v in values]
    replaced = {str(i): repr(v) for i, v in enumerate(out) if not math.isfinite(v)}
    if replaced:
        non_finite[key] = replaced
        out = [v if math.isfinite(v) else _stand_in(v) for v in out]
    return out


def _stand_in(value: float) -> float:
    return NAN_STAND_IN if math.isnan(value) else math.copysign(INF_STAND_IN, value)


# --------------------------------------------------------------------------- the rank file


def write_logging_board_step(
    board_root: str | os.PathLike,
    step: int,
    samples: Iterable[ShiftSample],
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    rank: int = DRIVER_RANK,
) -> Path:
    """Append step `step`'s lines to ``<board_root>/<experiment>/rollout_data_rank_<rank>.jsonl``; returns it.

    `experiment` names the run's folder (the trainer passes trainer.experiment_name; the viewer
    lists these folders). Lines of steps >= `step` already in the file (a resumed run) are
    dropped first, so the file stays in step order with each step once. An error while building
    the lines (`samples` may be a generator) leaves the file as it was.
    """
    path = board_file(board_root, experiment, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(logging_board_record(sample, step), ensure_ascii=False, allow_nan=False) + "\n" for sample in samples]
    data = _LONE_SURROGATE.sub("\ufffd", "".join(lines)).encode("utf-8")
    _drop_steps_from(path, int(step))
    append_durably(path, data)
    return path


def _drop_steps_from(path: Path, step: int) -> None:
    """Leave `path` holding whole lines of steps < `step` only (reads one line when it already does)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    last = _last_line(path)
    last_step = _step_of(last) if last.endswith(b"\n") else None
    if last_step is not None and last_step < step:
        return  # the usual case: the file ends with an earlier step, whole
    kept = dropped = 0

    def copy(out) -> None:
        nonlocal kept, dropped
        with open(path, "rb") as source:
            for line in source:
                line_step = _step_of(line) if line.endswith(b"\n") else None
                if line_step is not None and line_step < step:
                    out.write(line)
                    kept += 1
                else:
                    dropped += 1

    atomic_write_with(path, copy)
    logger.warning("%s: dropped %d line(s) of step >= %d or torn by a crash before writing step %d (%d kept)",
                   path, dropped, step, step, kept)


def _last_line(path: Path, chunk: int = 1 << 16) -> bytes:
    """The file's last line (with its newline if it has one), read from the end."""
    with open(path, "rb") as file:
        position = file.seek(0, os.SEEK_END)
        tail = b""
        while position > 0:
            size = min(chunk, position)
            position -= size
            file.seek(position)
            tail = file.read(size) + tail
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0:
                return tail[cut + 1 :]
        return tail


def _step_of(line: bytes) -> int | None:
    """The step of one dumped line; None when the line is not a JSON object with a step."""
    try:
        record = json.loads(line)
        return int(record["step"])
    except (ValueError, TypeError, KeyError):
        return None


# --------------------------------------------------------------------------- reading back


def read_logging_board(directory: str | os.PathLike, experiment: str | None = None) -> dict[int, list[dict[str, Any]]]:
    """Every record of the run's `*.jsonl` files, grouped by step as the viewer does (rank files in
    name order, lines in file order; a torn last line is skipped, as the viewer skips it).

    `directory` is the board root with `experiment` given; without it, either the run folder
    itself or a board root holding exactly one run.
    """
    folder = _run_folder(Path(directory), experiment)
    steps: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                record = json.loads(line)
                steps.setdefault(int(record["step"]), []).append(record)
    return steps


def _run_folder(directory: Path, experiment: str | None) -> Path:
    if experiment is not None:
        return board_file(directory, experiment).parent
    if not directory.is_dir() or any(directory.glob("*.jsonl")):
        return directory
    runs = sorted(p.name for p in directory.iterdir() if p.is_dir() and any(p.glob("*.jsonl")))
    if len(runs) > 1:
        raise ValueError(f"{directory} holds several runs ({', '.join(runs)}); pass experiment= one of them")
    return directory / runs[0] if runs else directory
