"""Math-answer reward for verl: ``compute_score`` (verl's signature) and ``score_batch``.

Returns ``{"score", "acc", "pred", "reason"}`` with ``reason`` one of correct, wrong,
no_answer, truncated, timeout, error. Extraction is pure string work in the caller; only the
equivalence check runs in the kill-able worker pool, under a per-answer deadline.

Example (no worker needed: the strings already match)::

    >>> compute_score("math", "So the answer is \\\\boxed{42}.", "42")["reason"]
    'correct'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparse_rlvr.core.verification.equivalence import quick_verdict
from sparse_rlvr.core.verification.extract import Extraction, extract_final_answer, gold_box_group, last_answer_line
from sparse_rlvr.core.verification.normalize import parts, squash
from sparse_rlvr.core.verification.pool import shared_pool


@dataclass(frozen=True)
class MathRewardConfig:
    """Settings of the math reward. Scores default to DAPO's +1 / -1."""

    correct_score: float = field(default=1.0, metadata={"help": "Score of a correct final answer."})
    wrong_score: float = field(
        default=-1.0, metadata={"help": "Score of a wrong answer, and of a timeout or error while checking it."}
    )
    no_answer_score: float = field(
        default=-1.0, metadata={"help": "Score when there is no final answer (none, or an unclosed \\boxed)."}
    )
    deadline_s: float = field(
        default=5.0, metadata={"help": "Hard wall-clock limit per answer in seconds; past it the worker is killed."}
    )
    num_workers: int = field(default=2, metadata={"help": "Verifier worker processes (about one per free core)."})
    tolerance: float = field(
        default=0.0,
        metadata={"help": "Relative tolerance for decimal answers; 0 means exact (0.142857 is not 1/7)."},
    )
    max_response_chars: int = field(
        default=100_000, metadata={"help": "Longer responses are cut to their last this-many characters."}
    )
    max_answer_chars: int = field(
        default=1_000, metadata={"help": "An extracted answer longer than this is scored as error, not parsed."}
    )

    def __post_init__(self) -> None:
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be > 0 seconds, got {self.deadline_s}")
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}; use 1 for a single core")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 (0 = exact), got {self.tolerance}")
        if self.max_response_chars < 1 or self.max_answer_chars < 1:
            raise ValueError("max_response_chars and max_answer_chars must be >= 1")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> MathRewardConfig:
        """A config from ``config=`` or field overrides in ``kwargs``; other keys are ignored."""
        base = kwargs.get("config")
        if isinstance(base, MathRewardConfig):
            return base
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in {**dict(base or {}), **kwargs}.items() if k in names}
        return cls(**values)


def _result(config: MathRewardConfig, reason: str, pred: str | None) -> dict[str, Any]:
    score = {"correct": config.correct_score, "no_answer": config.no_answer_score, "truncated": config.no_answer_score}
    return {"score": score.get(reason, config.wrong_score), "acc": reason == "correct", "pred": pred or "", "reason": reason}


def _as_text(value: Any) -> str | None:
    """Strings pass; numbers become strings; anything else is not gradable text."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _gold_text(ground_truth: Any) -> str | None:
    """The gold answer as bare LaTeX.

    A gold with boxes is the list of its final boxes (``\\boxed{1}\\boxed{2}`` is ``1, 2``; a
    worked solution that boxes ``004`` three times is ``004``; see :func:`gold_box_group`). A
    worked solution without a box gives its ``Answer:`` line ("Final Answer: The final answer
    is $28\\%$"). Otherwise the gold itself, without ``$`` delimiters.
    """
    gold = _as_text(ground_truth)
    if gold is None and isinstance(ground_truth, (list, tuple)) and ground_truth:
        gold = _as_text(ground_truth[0])
    if not gold or not gold.strip():
        return None
    boxed = gold_box_group(gold)
    if boxed:
        return ", ".join(boxed)
    if last_answer_line(gold) is not None:
        found = extract_final_answer(gold)
        if found.status == "ok" and found.answer:
            return found.answer
    return gold.strip().strip("$").strip()


def _prediction(found: Extraction, gold: str) -> str:
    """The answer to grade: all boxes of a multi-part final answer when the gold has several
    parts too, else the last box (a later box replaces an earlier one)."""
    if len(found.parts) > 1 and len(parts(gold)) > 1:
        return ", ".join(found.parts)
    return found.answer or ""


def _options(extra_info: Any) -> dict[str, str] | None:
    """Multiple-choice options ``{"A": text, ...}`` from ``extra_info["options"|"choices"]``."""
    if not isinstance(extra_info, Mapping):
        return None
    raw = extra_info.get("options", extra_info.get("choices"))
    if isinstance(raw, Mapping):
        return {str(k).strip("() ").upper(): str(v) for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(raw)}
    return None


def prepare(solution_str: Any, ground_truth: Any, extra_info: Any, config: MathRewardConfig) -> dict | tuple:
    """Either a final result (no answer, error, trivially equal) or a task for the worker pool."""
    text, gold = _as_text(solution_str), _gold_text(ground_truth)
    if text is None or gold is None:
        return _result(config, "error", None)
    found = extract_final_answer(text[-config.max_response_chars :])
    if found.status != "ok":
        return _result(config, found.status, None)
    pred = _prediction(found, gold)
    if len(pred) > config.max_answer_chars or len(gold) > config.max_answer_chars:
        return _result(config, "error", pred)
    if squash(pred) == squash(gold):
        return _result(config, "correct", pred)
    quick = quick_verdict(gold, pred, config.tolerance)  # letters, plain numbers: no worker needed
    if quick is not None:
        return _result(config, "correct" if quick else "wrong", pred)
    return (gold, pred, config.tolerance, _options(extra_info))


def _finish(task: tuple, outcome: tuple, config: MathRewardConfig) -> dict[str, Any]:
    status, value = outcome
    reason = ("correct" if value else "wrong") if status == "ok" else status
    return _result(config, reason, task[1])


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Grade one response (verl's ``compute_score`` signature); never raises, never hangs.

    ``kwargs`` may hold ``config=MathRewardConfig(...)`` or any of its fields; the rest of
    what verl passes (e.g. ``reward_router_address``) is ignored.
    """
    config = MathRewardConfig.from_kwargs(kwargs)
    try:
        prepared = prepare(solution_str, ground_truth, extra_info, config)
        if isinstance(prepared, dict):
            return prepared
        return _finish(prepared, shared_pool(config.num_workers).run(prepared, config.deadline_s), config)
    except Exception as error:  # the reward must not take down a training step
        return {**_result(config, "error", None), "error": repr(error)[:300]}


def score_batch(
    solutions: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Iterable[Any] | None = None,
    config: MathRewardConfig | None = None,
) -> list[dict[str, Any]]:
    """Grade many responses in parallel across the worker processes; results in input order.

    Identical (gold, answer) checks are sent to a worker once: a GRPO group's samples often
    reach the same final answer.
    """
    config = config or MathRewardConfig()
    if len(solutions) != len(ground_truths):
        raise ValueError(f"{len(solutions)} solutions but {len(ground_truths)} ground truths")
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solutions)
    prepared = [prepare(s, g, e, config) for s, g, e in zip(solutions, ground_truths, infos)]
    pending = [i for i, p in enumerate(prepared) if isinstance(p, tuple)]
    unique = {_task_key(prepared[i]): prepared[i] for i in pending}
    outcomes = dict(zip(unique, shared_pool(config.num_workers).map(list(unique.values()), config.deadline_s)))
    for i in pending:
        prepared[i] = _finish(prepared[i], outcomes[_task_key(prepared[i])], config)
    return prepared


def _task_key(task: tuple) -> tuple:
    """Hashable identity of a (gold, pred, tolerance, options) worker task."""
    gold, pred, tolerance, options = task
    return gold, pred, tolerance, tuple(sorted(options.items())) if options else None
