"""Final-answer extraction: last box or Answer: line after </think>, never a guess."""

from __future__ import annotations

import pytest

from sparse_rlvr.core.verification.extract import choice_letter, extract_final_answer


@pytest.mark.parametrize(
    ("text", "answer", "status"),
    [
        ("so \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "ok"),
        ("\\boxed{\\sqrt{\\frac{1}{2}}} done", "\\sqrt{\\frac{1}{2}}", "ok"),
        ("\\boxed{3}\nAnswer: 5", "5", "ok"),
        ("Answer: 5\nso \\boxed{3}", "3", "ok"),
        ("Answer: **73**", "73", "ok"),
        ("<think>\\boxed{1}</think>\\boxed{2}", "2", "ok"),
        ("<think>\\boxed{1}</think>no box", None, "no_answer"),
        ("\\boxed{\\frac{1", None, "truncated"),
        ("the answer is 5", None, "no_answer"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}", "ok"),
    ],
)
def test_extract_final_answer(text: str, answer: str | None, status: str) -> None:
    found = extract_final_answer(text)
    assert (found.answer, found.status) == (answer, status)


@pytest.mark.parametrize("form", ["(C)", "\\text{(C)}", "\\textbf{(C)}", "C", '"C"', "\\text{C}", "C."])
def test_choice_letter_forms(form: str) -> None:
    assert choice_letter(form) == "C"


@pytest.mark.parametrize("form", ["12", "CD", "\\frac{1}{2}", "x"])
def test_not_a_choice(form: str) -> None:
    assert choice_letter(form) is None
