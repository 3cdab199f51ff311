"""MathRewardConfig: DAPO defaults, validation with actionable errors, kwargs overrides."""

from __future__ import annotations

import dataclasses
import doctest

import pytest

import sparse_rlvr.core.verification.math as math_reward
from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score


def test_defaults_are_dapo_and_documented() -> None:
    config = MathRewardConfig()
    assert (config.correct_score, config.wrong_score, config.no_answer_score) == (1.0, -1.0, -1.0)
    assert config.tolerance == 0.0
    assert all(f.metadata.get("help") for f in dataclasses.fields(MathRewardConfig))


@pytest.mark.parametrize("bad", [{"deadline_s": 0}, {"num_workers": 0}, {"tolerance": -1e-3}, {"max_answer_chars": 0}])
def test_invalid_values_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        MathRewardConfig(**bad)


def test_kwargs_override_and_tolerance() -> None:
    assert compute_score("m", "\\boxed{7}", "8", wrong_score=0.0)["score"] == 0.0
    assert compute_score("m", "no box", "8", no_answer_score=-0.5)["score"] == -0.5
    assert compute_score("m", "\\boxed{0.142857}", "\\frac{1}{7}")["reason"] == "wrong"
    assert compute_score("m", "\\boxed{0.142857}", "\\frac{1}{7}", tolerance=1e-5)["reason"] == "correct"


def test_choice_text_via_options() -> None:
    extra = {"options": {"A": "12", "B": "\\frac{1}{2}"}}
    assert compute_score("m", "\\boxed{0.5}", "B", extra)["reason"] == "correct"
    assert compute_score("m", "\\boxed{12}", "B", extra)["reason"] == "wrong"


def test_module_doctest() -> None:
    assert doctest.testmod(math_reward).failed == 0
