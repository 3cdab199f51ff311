"""Sampled accuracy of a model on the miniature task, graded by the project's math verifier.

Overall, on the fork prompts whose two strategies give different answers (where the base model
should sit near 1/2), and the share of responses with a gradable final answer (the format).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparse_rlvr.core.decoding import decode_alone
from sparse_rlvr.core.sampling import SamplingOptions
from sparse_rlvr.core.verification.math import MathRewardConfig, score_batch
from sparse_rlvr.workflows.miniature.base_model import one_thread
from sparse_rlvr.workflows.miniature.task import Problem, answer, prompt_string

MAX_NEW_TOKENS = 40  # the longest correct response is 27 characters + EOS


@dataclass(frozen=True)
class Accuracy:
    """Sampled accuracies (temperature 1) on `n` prompts, `n_disagree` of them forks with different answers."""

    overall: float
    fork_disagree: float
    formatted: float
    n: int
    n_disagree: int


def sample_responses(
    model: Any, tokenizer: Any, problems: Sequence[Problem], seed: int, temperature: float = 1.0, batch_size: int = 256
) -> list[str]:
    """One sampled response text per problem (special tokens dropped), in batches with a KV cache."""
    with one_thread():
        return _sample(model, tokenizer, problems, seed, temperature, batch_size)


def _sample(model: Any, tokenizer: Any, problems: Sequence[Problem], seed: int, temperature: float,
            batch_size: int) -> list[str]:
    vocab = len(tokenizer)
    texts: list[str] = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        prompts = [tokenizer(prompt_string(p, tokenizer), add_special_tokens=False)["input_ids"] for p in chunk]
        out = decode_alone(model, prompts, SamplingOptions(temperature=temperature, max_new_tokens=MAX_NEW_TOKENS),
                           vocab_size=vocab, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                           seed=seed + start)
        texts += tokenizer.batch_decode(out, skip_special_tokens=True)
    return texts


def accuracy(
    model: Any, tokenizer: Any, problems: Sequence[Problem], seed: int = 0, temperature: float = 1.0
) -> Accuracy:
    """Sample one response per problem and grade it with ``score_batch`` (score 1 = correct)."""
    if not problems:
        raise ValueError("accuracy needs at least one problem; make some with task.make_problems(n, seed, 'test')")
    return grade(sample_responses(model, tokenizer, problems, seed, temperature), problems)


def grade(texts: Sequence[str], problems: Sequence[Problem]) -> Accuracy:
    """Grade one response text per problem with ``score_batch`` (correct = the verifier's ``acc``)."""
    if len(texts) != len(problems) or not problems:
        raise ValueError(f"need one response per problem and at least one, got {len(texts)} and {len(problems)}")
    results = score_batch(list(texts), [str(answer(p)) for p in problems], config=MathRewardConfig(num_workers=1))
    correct = [r["acc"] for r in results]
    disagree = [i for i, p in enumerate(problems) if answer(p) != answer(p, "left_to_right")]
    return Accuracy(
        overall=sum(correct) / len(problems),
        fork_disagree=sum(correct[i] for i in disagree) / len(disagree) if disagree else float("nan"),
        formatted=sum(r["reason"] not in ("no_answer", "truncated") for r in results) / len(problems),
        n=len(problems),
        n_disagree=len(disagree),
    )
