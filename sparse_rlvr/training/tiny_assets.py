"""Everything the tiny CPU recipes need, made in code: a tiny HF model dir and a math dataset.

``make_tiny_assets(out_dir)`` writes::

    out_dir/model/          tiny Qwen2 + byte-level char tokenizer (``sparse_rlvr.tiny``)
    out_dir/train.parquet   synthetic multi-step integer arithmetic, verl's RL parquet format
    out_dir/test.parquet

Rows follow verl's ``RLHFDataset`` schema: ``data_source``, ``prompt`` (chat messages),
``ability``, ``reward_model = {"style": "rule", "ground_truth": "<int>"}``, ``extra_info``.
``data_source`` is ``"lighteval/MATH"`` so verl's own default scorer
(``verl.utils.reward_score.default_compute_score`` -> ``math_reward``) grades the last
``\\boxed{...}`` of a response against the integer answer.
"""

from __future__ import annotations

import random
from pathlib import Path

DATA_SOURCE = "lighteval/MATH"
INSTRUCTION = "Put the final answer in \\boxed{}."


def arithmetic_problem(rng: random.Random, steps: int = 2) -> tuple[str, int]:
    """A left-to-right chain like ``(3+4)*2`` of `steps` operations on 1..9; returns (text, answer).

    >>> arithmetic_problem(random.Random(0))[1] == eval(arithmetic_problem(random.Random(0))[0])
    True
    """
    expression = str(rng.randint(1, 9))
    for _ in range(steps):
        op = rng.choice("+-*")
        expression = f"({expression}){op}{rng.randint(1, 9)}" if op == "*" else f"{expression}{op}{rng.randint(1, 9)}"
    return expression, int(eval(expression))  # noqa: S307 - digits and + - * ( ) only, made above


def math_rows(count: int, seed: int, split: str) -> list[dict]:
    """`count` dataset rows in verl's parquet schema."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        expression, answer = arithmetic_problem(rng, steps=rng.randint(1, 3))
        rows.append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [{"role": "user", "content": f"{expression}=? {INSTRUCTION}"}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(answer)},
                "extra_info": {"split": split, "index": index, "expression": expression},
            }
        )
    return rows


def make_tiny_assets(out_dir: str | Path, train_rows: int = 256, test_rows: int = 32, seed: int = 0) -> Path:
    """Write the tiny model/tokenizer and train/test parquet files under `out_dir`; returns it."""
    import pandas as pd

    from sparse_rlvr.tiny import save_tiny_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_tiny_model(out / "model")
    pd.DataFrame(math_rows(train_rows, seed, "train")).to_parquet(out / "train.parquet")
    pd.DataFrame(math_rows(test_rows, seed + 1, "test")).to_parquet(out / "test.parquet")
    return out
