"""Final-answer extraction: last box or Answer: line after </think>, never a guess."""

from __future__ import annotations

import pytest

from sparse_rlvr.core.verification.extract import choice_letter, choice_with_text, extract_final_answer, gold_box_group


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


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("\\boxed{1}, \\boxed{2}", ("1", "2")),
        ("$x = \\boxed{1}$ \\quad $y = \\boxed{2}$", ("x = 1", "y = 2")),
        ("\\boxed{(1, 2)} \\text{ and } \\boxed{(2, 1)}", ("(1, 2)", "(2, 1)")),
        ("\\boxed{1}, \\boxed{2}. Wait, that is wrong: \\boxed{4}", ("4",)),  # a later box replaces
        ("\\boxed{3} \\boxed{3}", ("3",)),
    ],
)
def test_multi_part_boxes(text: str, parts: tuple[str, ...]) -> None:
    found = extract_final_answer(text)
    assert found.status == "ok" and found.parts == parts
    assert found.answer == parts[-1].split("= ")[-1]


@pytest.mark.parametrize(
    ("gold", "group"),
    [
        ("\\boxed{1}\\boxed{2}", ["1", "2"]),
        ("$$\\boxed{2}, \\boxed{3}, \\boxed{5}$$", ["2", "3", "5"]),
        ("\\boxed{004}. Check: the sum is 2,552,004 so the last three digits give\n**Final Answer**\n\\boxed{004}", ["004"]),
        ("\\boxed{1} no no no no no \\boxed{2}", ["2"]),
        ("no box at all", []),
    ],
)
def test_gold_box_group(gold: str, group: list[str]) -> None:
    assert gold_box_group(gold) == group


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so the answer is (C).", "C"),
        ("Thus the final answer is **(B)**\n", "B"),
        ("Final Answer: The final answer is $28\\%$. I hope it is correct.", "28\\%"),
        ("It is 120. Final Answer: The final answer is 12,000,023. I hope it is correct. <|im_start|>", "12,000,023"),
        ('Final Answer: The final answer is \\"$12 $ and $13 $\\". I hope it is correct.', "12 $ and $13"),  # both numbers, not the first
        ("Answer: The volume of $V$ is 120.", "The volume of $V$ is 120"),  # words: kept whole, so refused
    ],
)
def test_answer_sentences(text: str, answer: str) -> None:
    assert extract_final_answer(text).answer == answer


@pytest.mark.parametrize("text", ["the answer is (C) because", "maybe (C)", "the answer is C, or D"])
def test_answer_is_needs_a_final_option(text: str) -> None:
    assert extract_final_answer(text).status == "no_answer"


@pytest.mark.parametrize(
    ("form", "parsed"),
    [("\\text{(D) } 24", ("D", "24")), ("\\textbf{(E)}\\ 17", ("E", "17")), ("(C) 12", ("C", "12")), ("(C)", None), ("24", None)],
)
def test_choice_with_text(form: str, parsed: tuple[str, str] | None) -> None:
    assert choice_with_text(form) == parsed
