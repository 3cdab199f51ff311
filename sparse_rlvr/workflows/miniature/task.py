"""The miniature's synthetic task: mod-10 arithmetic whose responses fork between two strategies.

A prompt is an expression of 3 or 4 single digits (``3+4*5=``); a response is a short chain of
thought, one step per operation, then the answer in ``\\boxed{}`` so the project's math verifier
grades it::

    prompt 3+4*5=     precedence (correct)    4*5=0;3+0=3;\\boxed{3}
                      left to right (wrong)   3+4=7;7*5=5;\\boxed{5}

Every result is taken mod 10, so every number is one character and every step six. On a "fork"
prompt a later ``*`` outranks an earlier ``+``/``-``: the reliable strategy (reduce the leftmost
highest-precedence operator) and the plausible one (reduce the leftmost operator) choose different
operations at one step, and the character where their responses first part is the planted fork.
It sits at the first response token (``3+4*5``) or after a first step both agree on
(``2*3+4*5``: ``2*3=6;`` then ``4*5`` vs ``6+4``). Everything after the fork is step-by-step
arithmetic the base model does reliably.

Notation: a response's token positions count from its first token (0), as verl's ``responses``.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sparse_rlvr.core.tables import verl_rl_schema, write_verl_parquet

DATA_SOURCE = "sparse_rlvr/miniature_mod10"
OPERATORS = "+-*"
PRECEDENCE = {"+": 1, "-": 1, "*": 2}
Strategy = Literal["precedence", "left_to_right"]
Kind = Literal["fork_first", "fork_later", "plain"]
KINDS: tuple[Kind, ...] = ("fork_first", "fork_later", "plain")
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
"""The prompt as is: Qwen's role markers would be ~20 of every sequence's ~45 tokens, and every one of
them is compute in base training and in every GRPO step, for a model that talks to no one else."""


@dataclass(frozen=True)
class Step:
    """One written operation ``left op right=result;`` (all mod 10)."""

    left: int
    op: str
    right: int
    result: int
    op_index: int  # which operator of the current expression was reduced

    @property
    def text(self) -> str:
        return f"{self.left}{self.op}{self.right}={self.result};"


@dataclass(frozen=True)
class Problem:
    """An expression of single digits ``digits[0] ops[0] digits[1] ...``."""

    digits: tuple[int, ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.digits) != len(self.ops) + 1 or not self.ops:
            raise ValueError(f"need n+1 digits for n >= 1 operators, got {self.digits} and {self.ops}")
        if any(not 0 <= d <= 9 for d in self.digits) or any(o not in OPERATORS for o in self.ops):
            raise ValueError(f"digits must be 0-9 and operators one of {OPERATORS!r}: {self.digits}, {self.ops}")

    @property
    def expression(self) -> str:
        return "".join(f"{d}{o}" for d, o in zip(self.digits, self.ops)) + str(self.digits[-1])

    @property
    def prompt_text(self) -> str:
        """The user message: the expression and ``=``."""
        return f"{self.expression}="

    @property
    def kind(self) -> Kind:
        """``fork_first``/``fork_later``: the strategies part at the first / a later step; ``plain``: never."""
        step = fork_step(self)
        return "plain" if step is None else "fork_first" if step == 0 else "fork_later"


def _apply(left: int, op: str, right: int) -> int:
    value = left + right if op == "+" else left - right if op == "-" else left * right
    return value % 10


def solve(problem: Problem, strategy: Strategy) -> list[Step]:
    """The steps one strategy writes: reduce the leftmost highest-precedence operator, or the leftmost."""
    if strategy not in ("precedence", "left_to_right"):
        raise ValueError(f"strategy must be 'precedence' or 'left_to_right', got {strategy!r}")
    digits, ops, steps = list(problem.digits), list(problem.ops), []
    while ops:
        if strategy == "precedence":
            top = max(PRECEDENCE[o] for o in ops)
            i = next(k for k, o in enumerate(ops) if PRECEDENCE[o] == top)
        else:
            i = 0
        result = _apply(digits[i], ops[i], digits[i + 1])
        steps.append(Step(digits[i], ops[i], digits[i + 1], result, i))
        digits[i : i + 2] = [result]
        del ops[i]
    return steps


def response_text(problem: Problem, strategy: Strategy = "precedence") -> str:
    """The full response of a strategy, e.g. ``4*5=0;3+0=3;\\boxed{3}`` (no EOS)."""
    steps = solve(problem, strategy)
    return "".join(s.text for s in steps) + f"\\boxed{{{steps[-1].result}}}"


def answer(problem: Problem, strategy: Strategy = "precedence") -> int:
    """The final value of a strategy; ``answer(p)`` is the gold answer."""
    return solve(problem, strategy)[-1].result


def fork_step(problem: Problem) -> int | None:
    """Index of the first step where the two strategies reduce different operators; None if never."""
    pairs = zip(solve(problem, "precedence"), solve(problem, "left_to_right"))
    return next((k for k, (a, b) in enumerate(pairs) if a.op_index != b.op_index), None)


def fork_char_positions(problem: Problem) -> list[int]:
    """Character offsets in the correct response of the planted forks (empty on plain prompts).

    Built from the steps, not by diffing whole responses: the fork is in the step where the
    strategies choose different operators, at the first character where those two steps differ
    (the left operand, or the operator when the left operands are equal).
    """
    k = fork_step(problem)
    if k is None:
        return []
    correct, wrong = solve(problem, "precedence"), solve(problem, "left_to_right")
    start = sum(len(s.text) for s in correct[:k])
    offset = next(i for i, (a, b) in enumerate(zip(correct[k].text, wrong[k].text)) if a != b)
    return [start + offset]


def fork_token_positions(problem: Problem, tokenizer: Any) -> list[int]:
    """Token positions in the correct response of the planted forks, for any prefix-stable tokenizer.

    The token index is the number of tokens the response's text before the fork encodes to (equal
    to the character offset with the project's character-level tiny tokenizer).
    """
    text = response_text(problem)
    return [len(tokenizer(text[:c], add_special_tokens=False)["input_ids"]) for c in fork_char_positions(problem)]


def split_of(problem: Problem, test_share: float = 0.1) -> Literal["train", "test"]:
    """A fixed train/test split by a hash of the expression, so held-out prompts are never trained on."""
    bucket = zlib.crc32(problem.expression.encode()) % 1000
    return "test" if bucket < test_share * 1000 else "train"


def random_problem(rng: random.Random, kind: Kind) -> Problem:
    """A random 3- or 4-digit problem of the given kind (rejection sampling over uniform operators)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    while True:
        n = 4 if kind == "fork_later" else rng.choice((3, 4))
        problem = Problem(tuple(rng.randrange(10) for _ in range(n)), tuple(rng.choice(OPERATORS) for _ in range(n - 1)))
        if problem.kind == kind:
            return problem


def make_problems(
    count: int, seed: int, split: Literal["train", "test"] = "train", fork_share: float = 0.7, later_share: float = 0.5
) -> list[Problem]:
    """`count` seeded problems of one split: `fork_share` fork prompts, `later_share` of them forking after step 1."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not (0 <= fork_share <= 1 and 0 <= later_share <= 1):
        raise ValueError(f"fork_share and later_share must be in [0, 1], got {fork_share}, {later_share}")
    rng = random.Random(f"{seed}-{split}")
    problems = []
    while len(problems) < count:
        kind: Kind = "plain"
        if rng.random() < fork_share:
            kind = "fork_later" if rng.random() < later_share else "fork_first"
        problem = random_problem(rng, kind)
        if split_of(problem) == split:
            problems.append(problem)
    return problems


def tokenizer() -> Any:
    """The project's character-level tiny tokenizer with the task's bare chat template (saved with the model)."""
    from sparse_rlvr.workflows.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    return tok


def chat_prompt(problem: Problem) -> list[dict[str, str]]:
    """The prompt as verl's chat list."""
    return [{"role": "user", "content": problem.prompt_text}]


def prompt_string(problem: Problem, tokenizer: Any) -> str:
    """The chat-formatted prompt text verl's rollout sees (generation prompt included)."""
    return tokenizer.apply_chat_template(chat_prompt(problem), tokenize=False, add_generation_prompt=True)


def rl_rows(problems: Sequence[Problem], tokenizer: Any, split: str) -> list[dict[str, Any]]:
    """Rows in verl's RL parquet schema; ``extra_info`` carries the planted fork token positions."""
    rows = []
    for index, p in enumerate(problems):
        rows.append({
            "data_source": DATA_SOURCE,
            "prompt": chat_prompt(p),
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(answer(p))},
            "extra_info": {
                "split": split,
                "index": index,
                "expression": p.expression,
                "kind": p.kind,
                "fork_positions": fork_token_positions(p, tokenizer),
                "wrong_answer": str(answer(p, "left_to_right")),
                "strategies_disagree": answer(p) != answer(p, "left_to_right"),
            },
        })
    return rows


def parquet_schema():
    """Arrow schema of the rows (explicit, so a file of plain prompts still types fork_positions as ints)."""
    import pyarrow as pa

    return verl_rl_schema([
        ("split", pa.string()), ("index", pa.int64()), ("expression", pa.string()), ("kind", pa.string()),
        ("fork_positions", pa.list_(pa.int64())), ("wrong_answer", pa.string()), ("strategies_disagree", pa.bool_()),
    ])


def write_parquet(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows to one parquet file verl's RLHFDataset reads (atomically)."""
    return write_verl_parquet(list(rows), path, parquet_schema())