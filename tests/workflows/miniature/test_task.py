"""The miniature task: answers, planted fork positions, verifier grades, verl parquet rows."""

from __future__ import annotations

import functools
import operator

import pandas as pd
import pytest

from sparse_rlvr.core.verification.math import compute_score
from sparse_rlvr.workflows.miniature.task import tokenizer as task_tokenizer
from sparse_rlvr.workflows.miniature.task import (
    DATA_SOURCE, Problem, answer, fork_char_positions, fork_token_positions, make_problems, prompt_string,
    response_text, rl_rows, solve, split_of, write_parquet,
)

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@pytest.fixture(scope="module")
def tokenizer():
    return task_tokenizer()


@pytest.fixture(scope="module")
def problems():
    return make_problems(300, seed=0) + make_problems(100, seed=0, split="test")


def _first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def test_worked_examples():
    p = Problem((3, 4, 5), ("+", "*"))  # 3+4*5 = 23, left to right (3+4)*5 = 35
    assert (p.prompt_text, p.kind) == ("3+4*5=", "fork_first")
    assert response_text(p) == "4*5=0;3+0=3;\\boxed{3}"
    assert response_text(p, "left_to_right") == "3+4=7;7*5=5;\\boxed{5}"
    assert fork_char_positions(p) == [0]
    q = Problem((2, 3, 4, 5), ("*", "+", "*"))  # both write 2*3=6; then 4*5 vs 6+4
    assert q.kind == "fork_later"
    assert response_text(q) == "2*3=6;4*5=0;6+0=6;\\boxed{6}"
    assert response_text(q, "left_to_right") == "2*3=6;6+4=0;0*5=0;\\boxed{0}"
    assert fork_char_positions(q) == [6]
    r = Problem((4, 4, 2), ("-", "*"))  # equal left operands: the operator is the first difference
    assert response_text(r)[:2] == "4*" and response_text(r, "left_to_right")[:2] == "4-"
    assert fork_char_positions(r) == [1]
    plain = Problem((7, 2, 3), ("*", "-"))
    assert plain.kind == "plain" and fork_char_positions(plain) == []


def test_answers_match_python_arithmetic_mod_10(problems):
    for p in problems:
        assert answer(p) == eval(p.expression) % 10  # noqa: S307 - our own digits and + - * only
        left_to_right = functools.reduce(lambda v, k: OPS[p.ops[k]](v, p.digits[k + 1]), range(len(p.ops)), p.digits[0])
        assert answer(p, "left_to_right") == left_to_right % 10
        assert [s.result for s in solve(p, "precedence")][-1] == answer(p)


def test_fork_positions_are_where_the_strategies_first_differ(problems, tokenizer):
    for p in problems:
        correct, wrong = response_text(p), response_text(p, "left_to_right")
        first = _first_difference(correct, wrong)
        assert fork_char_positions(p) == ([] if first is None else [first])
        assert (p.kind == "plain") == (correct == wrong)
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (correct, wrong)]
        token_first = _first_difference(*ids)
        assert fork_token_positions(p, tokenizer) == ([] if token_first is None else [token_first])


def test_forks_come_first_and_later(problems):
    positions = [fork_char_positions(p)[0] for p in problems if p.kind != "plain"]
    assert min(positions) == 0 and max(positions) >= 6
    later = sum(p.kind == "fork_later" for p in problems) / len(problems)
    assert 0.25 < later < 0.45  # 0.7 fork share x 0.5 later share


def test_problems_are_seeded_and_splits_disjoint():
    assert make_problems(50, seed=3) == make_problems(50, seed=3)
    assert make_problems(50, seed=3) != make_problems(50, seed=4)
    train = {p.expression for p in make_problems(2000, seed=0)}
    test = make_problems(200, seed=0, split="test")
    assert not train & {p.expression for p in test}
    assert all(split_of(p) == "test" for p in test)


def test_verifier_grades_correct_one_and_wrong_minus_one(problems):
    for p in problems[:60]:
        gold = str(answer(p))
        assert compute_score(DATA_SOURCE, response_text(p), gold)["score"] == 1.0
        expected = 1.0 if answer(p, "left_to_right") == answer(p) else -1.0
        assert compute_score(DATA_SOURCE, response_text(p, "left_to_right"), gold)["score"] == expected


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="digits must be 0-9"):
        Problem((10, 1), ("+",))
    with pytest.raises(ValueError, match="n\\+1 digits"):
        Problem((1, 2), ("+", "*"))
    with pytest.raises(ValueError, match="strategy must be"):
        solve(Problem((1, 2), ("+",)), "right_to_left")
    with pytest.raises(ValueError, match="split must be"):
        make_problems(3, 0, split="val")


def test_parquet_rows_have_verls_schema(tmp_path, tokenizer, problems):
    rows = rl_rows(problems[:40], tokenizer, "train")
    frame = pd.read_parquet(write_parquet(rows, tmp_path / "train.parquet"))
    assert list(frame.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    for (_, row), p in zip(frame.iterrows(), problems[:40]):
        assert row.data_source == DATA_SOURCE and row.ability == "math"
        assert [dict(m) for m in row.prompt] == [{"role": "user", "content": p.prompt_text}]
        assert row.reward_model == {"style": "rule", "ground_truth": str(answer(p))}
        assert list(row.extra_info["fork_positions"]) == fork_token_positions(p, tokenizer)
        assert row.extra_info["kind"] == p.kind
        assert row.extra_info["strategies_disagree"] == (answer(p) != answer(p, "left_to_right"))
    plain_only = [r for r in rows if not r["extra_info"]["fork_positions"]]
    assert pd.read_parquet(write_parquet(plain_only, tmp_path / "plain.parquet")).shape[0] == len(plain_only)


def test_prompt_string_is_the_chat_template(tokenizer):
    text = prompt_string(Problem((3, 4, 5), ("+", "*")), tokenizer)
    assert text == "3+4*5="  # the task's bare template: the expression is the whole prompt
