"""Everything the tiny CPU recipes need, made in code: a tiny HF model dir and a math dataset.

``make_tiny_assets(out_dir)`` writes::

    out_dir/model/          tiny Qwen2 + byte-level char tokenizer (``sparse_rlvr.workflows.tiny_models``), warm-started
                            on the task's answer format so GRPO groups get mixed rewards
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
from typing import Annotated

import typer

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


def math_rows(count: int, seed: int, split: str, max_ops: int = 3) -> list[dict]:
    """`count` dataset rows in verl's parquet schema, each with 1 to `max_ops` operations."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        expression, answer = arithmetic_problem(rng, steps=rng.randint(1, max_ops))
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


def warm_start(model, tokenizer, rows: list[dict], steps: int, seed: int = 0, batch_size: int = 32, lr: float = 3e-3):
    """Teach a random tiny model the answer format: a few hundred supervised steps on ``\\boxed{answer}``.

    A random model never writes a final answer, so every GRPO reward is the same and every
    advantage 0. After 150 steps on one-operation problems it answers in the format and is right
    ~15-20% of the time (sampled at temperature 1; measured on 64 samples), so groups of samples get different rewards and RL has a signal.
    """
    import torch

    generator = random.Random(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    pad = tokenizer.pad_token_id
    for _ in range(steps):
        pairs = []
        for row in generator.sample(rows, min(batch_size, len(rows))):
            prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
            prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
            answer = tokenizer(f"\\boxed{{{row['reward_model']['ground_truth']}}}{tokenizer.eos_token}")["input_ids"]
            pairs.append((prompt, answer))
        width = max(len(p) + len(a) for p, a in pairs)
        ids = torch.full((len(pairs), width), pad)
        labels = torch.full((len(pairs), width), -100)
        attention = torch.zeros((len(pairs), width), dtype=torch.long)
        for i, (prompt, answer) in enumerate(pairs):
            n = len(prompt) + len(answer)
            ids[i, :n] = torch.tensor(prompt + answer)
            labels[i, len(prompt):n] = torch.tensor(answer)
            attention[i, :n] = 1
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def make_tiny_assets(
    out_dir: str | Path, train_rows: int = 256, test_rows: int = 32, seed: int = 0, warm_start_steps: int = 150,
    max_ops: int = 1, padded_rows: int | None = None, vllm_compatible: bool = False,
) -> Path:
    """Write the tiny model/tokenizer and train/test parquet files under `out_dir`; returns it.

    Problems have 1 to `max_ops` operations on digits 1..9 (one by default: a tiny model can
    learn some of those). `warm_start_steps` = 0 keeps the random model (it never answers).
    `padded_rows`: lm_head rows beyond the tokenizer (None: tiny_models.PADDED_ROWS, like real
    checkpoints; 0: none, where verl's actor and the rollout agree without sparse_rlvr's cut).
    `vllm_compatible`: 2 attention heads of 32 dimensions (tiny_models.VLLM_CPU_HEADS) instead of
    4 of 16, for the vLLM CPU lane.
    """
    import pandas as pd
    import torch

    from sparse_rlvr.workflows.tiny_models import VLLM_CPU_HEADS, save_checkpoint, tiny_model, tiny_tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test = math_rows(train_rows, seed, "train", max_ops), math_rows(test_rows, seed + 1, "test", max_ops)
    tokenizer = tiny_tokenizer()
    model_kwargs = ({} if padded_rows is None else {"padded_rows": padded_rows}) | (VLLM_CPU_HEADS if vllm_compatible else {})
    model = tiny_model(seed, len(tokenizer), **model_kwargs)
    if warm_start_steps:
        with torch.random.fork_rng(devices=[]):  # the caller's torch RNG stays as it was
            torch.manual_seed(seed)
            # on problems of their own: memorising the RL prompts would make every sample right
            warm_start(model, tokenizer, math_rows(256, seed + 2, "warm_start", max_ops), warm_start_steps, seed)
    save_checkpoint(model, tokenizer, out / "model")
    pd.DataFrame(train).to_parquet(out / "train.parquet")
    pd.DataFrame(test).to_parquet(out / "test.parquet")
    return out


def make_tiny(
    out_dir: Annotated[Path, typer.Argument(help="Directory to create: model/, train.parquet, test.parquet.")],
    train_rows: Annotated[int, typer.Option(help="Synthetic arithmetic problems in train.parquet.")] = 256,
    test_rows: Annotated[int, typer.Option(help="Problems in test.parquet.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the model weights and of the problems.")] = 0,
    vllm: Annotated[bool, typer.Option("--vllm", help="A model CPU vLLM can run (head_dim 32), for rollout.name=vllm.")] = False,
) -> None:
    """Write a tiny Qwen2 model + tokenizer (HF dir) and a verifiable math dataset in verl's parquet format.

    Everything the tiny CPU recipes need on a fresh machine; point them at it with
    SPARSE_RLVR_TINY_DIR=OUT_DIR. Takes about a second.
    """
    from sparse_rlvr.core.errors import UserError
    from sparse_rlvr.core.inputs import check_out_dir

    check_out_dir(out_dir, "OUT_DIR")
    for name, value in (("--train-rows", train_rows), ("--test-rows", test_rows)):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}; verl needs at least one row in each file")
    typer.echo(make_tiny_assets(out_dir, train_rows=train_rows, test_rows=test_rows, seed=seed, vllm_compatible=vllm))
