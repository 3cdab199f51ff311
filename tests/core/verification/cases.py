"""Labelled grading cases: (category, response, gold, expected reason).

Expected reason is "correct", "wrong", "no_answer" or "truncated". Used by the tests and by
``benchmarks/verifier.py`` (positives = "correct").
"""

from __future__ import annotations

B = "The work is done. So the answer is \\boxed{%s}."
A = "Let me compute step by step.\nAnswer: %s"


def _pairs(category: str, template: str, rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    return [(category, template % pred, gold, reason) for pred, gold, reason in rows]


EQUAL_FORMS = [
    ("\\frac{1}{2}", "0.5", "correct"), ("0.5", "\\frac{1}{2}", "correct"), ("\\dfrac{3}{4}", "\\frac34", "correct"),
    ("\\tfrac{2}{3}", "\\frac{2}{3}", "correct"), ("1/2", "\\frac{1}{2}", "correct"), ("2/4", "\\frac{1}{2}", "correct"),
    ("0.142857", "\\frac{1}{7}", "wrong"), ("0.333", "\\frac{1}{3}", "wrong"), ("0.\\overline{3}", "\\frac{1}{3}", "correct"),
    ("0.1\\overline{6}", "\\frac{1}{6}", "correct"), ("1,000", "1000", "correct"), ("1000", "1{,}000", "correct"),
    ("12.50", "12.5", "correct"), ("\\sqrt{8}", "2\\sqrt{2}", "correct"), ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", "correct"),
    ("4.1231", "\\sqrt{17}", "wrong"), ("3.14", "\\pi", "wrong"), ("\\frac{\\pi}{2}", "pi/2", "correct"),
    ("2", "\\frac{4}{2}", "correct"), ("7", "8", "wrong"), ("\\frac{1}{2004!}", "\\frac{1}{2006!}", "wrong"),
    ("10^{3}", "1000", "correct"), ("2^{10}", "1024", "correct"), ("1023", "2^{10}", "wrong"), ("\\frac{5}{2}", "2.5", "correct"),
    ("x = 5", "5", "correct"), ("50\\%", "50", "correct"), ("50\\%", "0.5", "correct"), ("25", "25\\%", "correct"),
    ("40\\%", "0.5", "wrong"),
]
EXPRESSIONS = [
    ("x^2+2x", "x(x+2)", "correct"), ("-1+e^{16}", "e^{16}-1", "correct"), ("(x+1)^2", "x^2+2x+1", "correct"),
    ("2\\sin x \\cos x", "\\sin 2x", "correct"), ("x^2-1", "(x-1)(x+1)", "correct"), ("x^2+1", "(x+1)^2", "wrong"),
    ("3\\sqrt{2}", "\\sqrt{18}", "correct"), ("\\frac{a+b}{2}", "\\frac{b+a}{2}", "correct"), ("2a", "a+a", "correct"),
    ("a^2", "2a", "wrong"), ("\\log_2 8", "3", "correct"), ("\\binom{5}{2}", "10", "correct"), ("5!", "120", "correct"),
    ("6!", "120", "wrong"), ("2+3i", "3i+2", "correct"), ("2-3i", "2+3i", "wrong"), ("\\sqrt{2}+1", "1+\\sqrt{2}", "correct"),
    ("\\frac{1}{x}", "x^{-1}", "correct"), ("e^{i\\pi}", "-1", "correct"), ("y=2x+1", "2x+1", "correct"),
    ("\\frac{x}{2}", "0.5x", "correct"), ("4\\pi", "12.566", "wrong"),
]
INTERVALS_SETS = [
    ("x > 2", "(2, \\infty)", "correct"), ("x \\ge 2", "[2, \\infty)", "correct"), ("x \\ge 2", "(2, \\infty)", "wrong"),
    ("-1 \\le x < 3", "[-1, 3)", "correct"), ("(-\\infty, 5]", "x \\le 5", "correct"), ("[0,1]", "[0,1]", "correct"),
    ("[0,1)", "[0,1]", "wrong"), ("(-\\infty,-1)\\cup(1,\\infty)", "(-\\infty,-1)\\cup(1,\\infty)", "correct"),
    ("1, 2", "\\{1, 2\\}", "correct"), ("\\{2, 1\\}", "1, 2", "correct"), ("2, 1", "1,2", "correct"),
    ("1, 2, 3", "1, 2", "wrong"), ("1728", "1331 \\text{ and } 1728", "wrong"), ("1331 and 1728", "1331, 1728", "correct"),
    ("3, -3", "\\pm 3", "correct"), ("x=2 \\text{ or } x=3", "2, 3", "correct"), ("(1,2)", "(1,2)", "correct"),
    ("(2,1)", "(1,2)", "wrong"), ("\\frac{1}{2}, \\frac{1}{3}", "0.5, \\frac{1}{3}", "correct"), ("1, 4", "1, 2", "wrong"),
]
UNITS = [
    ("30^\\circ", "30", "correct"), ("30^{\\circ}", "30", "correct"), ("30°", "30", "correct"), ("30 degrees", "30", "correct"),
    ("5 \\text{ cm}", "5", "correct"), ("5\\text{cm}^2", "5", "correct"), ("\\$12.50", "12.5", "correct"), ("12 dollars", "12", "correct"),
    ("45^\\circ", "30", "wrong"), ("6 \\text{ cm}", "5", "wrong"), ("100 \\text{ meters}", "100", "correct"), ("3 hours", "3", "correct"),
    ("90", "90^\\circ", "correct"), ("7 \\text{ units}", "7", "correct"), ("15\\text{ inches}", "15", "correct"),
]
NEGATIVES = [
    ("-5", "-5", "correct"), ("−5", "-5", "correct"), ("- 5", "-5", "correct"), ("5", "-5", "wrong"), ("-5", "5", "wrong"),
    ("-\\frac{1}{2}", "-0.5", "correct"), ("\\frac{-1}{2}", "-\\frac{1}{2}", "correct"), ("-(3)", "-3", "correct"),
    ("-\\sqrt{2}", "\\sqrt{2}", "wrong"), ("-0", "0", "correct"), ("-12", "-\\frac{24}{2}", "correct"), ("-2.5", "-\\frac{5}{2}", "correct"),
]
CHOICES = [
    ("(C)", "C", "correct"), ("\\text{(C)}", "C", "correct"), ("\\textbf{(C)}", "C", "correct"), ("C", "C", "correct"),
    ("\\text{C}", "C", "correct"), ("(B)", "C", "wrong"), ("\\textbf{(A)}", "C", "wrong"), ("C", "(C)", "correct"),
    ("D", "\\text{(D)}", "correct"), ("E", "D", "wrong"),
]
OTHER = [  # (category, response, gold, reason)
    ("choices", "So the answer is \"C\".\nAnswer: \"C\"", "C", "correct"),
    ("choices", "Answer: (C) 12", "C", "correct"),  # issue 13: the option letter with its text counts
    ("markdown", "The final result:\n**Answer: 73**", "73", "correct"),
    ("markdown", "Answer: **73**", "73", "correct"),
    ("markdown", "Answer: $\\boxed{73}$", "73", "correct"),
    ("markdown", "Answer: $\\frac{1}{2}$", "0.5", "correct"),
    ("markdown", "Answer: \\(\\frac{1}{2}\\)", "\\frac{1}{2}", "correct"),
    ("markdown", "**Final Answer:** 42", "42", "correct"),
    ("markdown", "Answer: 42.", "42", "correct"),
    ("markdown", "## Answer: 17", "17", "correct"),
    ("last_answer", "First I thought \\boxed{3}. But wait, recheck: \\boxed{5}", "5", "correct"),
    ("last_answer", "First I thought \\boxed{5}. But wait, recheck: \\boxed{3}", "5", "wrong"),
    ("last_answer", "\\boxed{5} is wrong.\nAnswer: 3", "3", "correct"),
    ("last_answer", "Answer: 3\nHmm, actually it is \\boxed{5}", "5", "correct"),
    ("last_answer", "Answer: 5\nAnswer: 3", "3", "correct"),
    ("last_answer", "<think>maybe \\boxed{4}</think>The answer is \\boxed{6}", "6", "correct"),
    ("last_answer", "<think>the answer is \\boxed{6}</think>So I conclude nothing.", "6", "no_answer"),
    ("last_answer", "<think>\\boxed{6}</think>Final: \\boxed{7}", "6", "wrong"),
    ("last_answer", "\\boxed{\\frac{1}{2}} and \\boxed{\\frac{1}{3}}", "\\frac{1}{3}", "correct"),
    ("last_answer", "\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", "correct"),
    ("last_answer", "\\boxed{\\left(1, \\frac{\\pi}{2}\\right)}", "(1,\\frac{\\pi}{2})", "correct"),
    ("last_answer", "\\fbox{12}", "12", "correct"),
    ("last_answer", "Answer: 12\n\nDone.", "12", "correct"),
    ("last_answer", "The answer is 12 but let me box \\boxed{13}", "12", "wrong"),
    ("truncated", "So the answer is \\boxed{\\frac{1}{2", "\\frac{1}{2}", "truncated"),
    ("truncated", "Thus \\boxed{", "5", "truncated"),
    ("truncated", "\\boxed{3} and finally \\boxed{4", "3", "truncated"),
    ("truncated", "Answer: $\\boxed{12$", "12", "truncated"),
    ("truncated", "We get \\boxed{\\sqrt{2", "\\sqrt{2}", "truncated"),
    ("no_answer", "The answer is 5.", "5", "no_answer"),
    ("no_answer", "", "5", "no_answer"),
    ("no_answer", "I think it's 42 but I'm not sure", "42", "no_answer"),
    ("no_answer", "\\boxed{}", "5", "no_answer"),
    ("no_answer", "Answer:", "5", "no_answer"),
    ("no_answer", "Answer: **", "5", "no_answer"),
    ("no_answer", "x = 5, so the final value is 5", "5", "no_answer"),
    ("no_answer", "Let me think... 1/2 maybe", "\\frac{1}{2}", "no_answer"),
    ("no_answer", "<think>\\boxed{5}</think>", "5", "no_answer"),
    ("gold_forms", "\\boxed{5}", "\\boxed{5}", "correct"),
    ("gold_forms", "\\boxed{5}", "$5$", "correct"),
    ("gold_forms", "\\boxed{\\frac12}", "\\frac{1}{2}", "correct"),
    ("gold_forms", "\\boxed{0.5}", "1/2", "correct"),
    ("gold_forms", "\\boxed{10}", "10.0", "correct"),
    ("gold_forms", "\\boxed{1.5}", "\\frac{3}{2}", "correct"),
]

ISSUE_13 = [  # (category, response, gold, reason): the recall categories of issue 13
    ("shorthand", B % "\\sqrt3", "\\sqrt{3}", "correct"), ("shorthand", B % "\\frac12", "\\frac{1}{2}", "correct"),
    ("shorthand", B % "\\frac 1{2}", "0.5", "correct"), ("shorthand", B % "2\\sqrt3", "2\\sqrt{3}", "correct"),
    ("shorthand", B % "\\tfrac{3}{4}", "0.75", "correct"), ("shorthand", B % "\\dfrac 34", "\\frac{3}{4}", "correct"),
    ("shorthand", B % "\\frac 12", "\\frac{1}{2}", "correct"), ("shorthand", B % "\\sqrt2+1", "1+\\sqrt{2}", "correct"),
    ("shorthand", B % "\\frac 12", "12", "wrong"), ("shorthand", B % "2\\sqrt3", "2", "wrong"),
    ("thousands", B % "32,\\!349", "32349", "correct"), ("thousands", B % "11,\\!111,\\!111", "11111111", "correct"),
    ("thousands", B % "32,\\! 349", "32,349", "correct"), ("thousands", B % "1\\,000", "1000", "correct"),
    ("thousands", B % "14{,}916", "14916", "correct"), ("thousands", B % "1 000", "1000", "correct"),
    ("thousands", B % "32,\\!348", "32349", "wrong"),
    ("sets_pm", B % "{-2021, 2021}", "\\pm 2021", "correct"), ("sets_pm", B % "\\{2021, -2021\\}", "\\pm 2021", "correct"),
    ("sets_pm", B % "\\pm 2021", "{-2021, 2021}", "correct"), ("sets_pm", B % "{1, 2}", "2, 1", "correct"),
    ("sets_pm", B % "{2021}", "\\pm 2021", "wrong"), ("sets_pm", B % "{-2021, 2022}", "\\pm 2021", "wrong"),
    ("empty_set", B % "\\varnothing", "\\emptyset", "correct"), ("empty_set", B % "\\emptyset", "\\varnothing", "correct"),
    ("empty_set", B % "\\varnothing", "\\{0\\}", "wrong"),
    ("choices_text", B % "\\text{(D) } 24", "D", "correct"), ("choices_text", B % "\\textbf{(E)}\\ 17", "E", "correct"),
    ("choices_text", B % "\\text{(D) } 24", "24", "correct"), ("choices_text", B % "\\textbf{(E)}\\ 17", "(E)", "correct"),
    ("choices_text", B % "\\text{(D) } 24", "C", "wrong"), ("choices_text", B % "\\textbf{(E)}\\ 17", "18", "wrong"),
    ("answer_is_choice", "Comparing the options, the answer is (C).", "C", "correct"),
    ("answer_is_choice", "So the final answer is **(B)**", "B", "correct"),
    ("answer_is_choice", "The answer is (C).", "D", "wrong"),
    ("answer_is_choice", "I first guessed \\boxed{A}. Checking again, the answer is (C).", "C", "correct"),
    ("answer_is_choice", "The answer is (C). Hmm, no: \\boxed{D}", "C", "wrong"),
    ("answer_line_unit", "Answer: 12 cm", "12", "correct"), ("answer_line_unit", "Answer: $5$ meters", "5", "correct"),
    ("answer_line_unit", "Answer: 30 degrees", "30", "correct"), ("answer_line_unit", "Answer: \\$12.50", "12.5", "correct"),
    ("answer_line_unit", "Answer: 12 cm", "13", "wrong"),
    ("multi_box", "The roots are \\boxed{2} and \\boxed{3}.", "2, 3", "correct"),
    ("multi_box", "$x = \\boxed{2}$, $y = \\boxed{3}$", "x=2, y=3", "correct"),
    ("multi_box", "$y = \\boxed{3}$, $x = \\boxed{2}$", "x=2, y=3", "correct"),
    ("multi_box", "$x = \\boxed{3}$, $y = \\boxed{2}$", "x=2, y=3", "wrong"),
    ("multi_box", "\\boxed{(1, 2)}, \\boxed{(2, 1)}", "(2,1),(1,2)", "correct"),
    ("multi_box", "\\boxed{1} \\quad \\text{and} \\quad \\boxed{2}", "\\{1, 2\\}", "correct"),
    ("multi_box", "\\boxed{2}, \\boxed{3}. Wait, recheck: \\boxed{4}", "4", "correct"),
    ("multi_box", "\\boxed{2}, \\boxed{3}. Wait, recheck: \\boxed{4}", "2, 3", "wrong"),
    ("multi_box", "\\boxed{2} and \\boxed{3}", "3", "correct"),
    ("gold_boxes", B % "1, 2", "\\boxed{1}\\boxed{2}", "correct"),
    ("gold_boxes", B % "2, 3, 5", "$\\boxed{2}, \\boxed{3}, \\boxed{5}$", "correct"),
    ("gold_boxes", B % "1, 2", "\\boxed{1} is not it. The answer is \\boxed{2}", "wrong"),
    ("gold_boxes", B % "7", "So $x = \\boxed{7}$. Checking: $7^2 = 49$, so \\boxed{7} is right.", "correct"),
    ("gold_solution", B % "28\\%", "The loss is $28\\%$.\nFinal Answer: The final answer is $28\\%$. I hope it is correct.", "correct"),
    ("gold_solution", B % "72", "Final Answer: The final answer is $28$. I hope it is correct.", "wrong"),
    ("gold_solution", B % "\\frac{14}{3}", "Adding, $2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$.", "correct"),
    ("final_answer", "So the total is 10,455.\nFinal Answer: The final answer is $10,455$. I hope it is correct.", "10455", "correct"),
    ("final_answer", "Final Answer: The final answer is 2/3. <|im_start|>user", "\\frac{2}{3}", "correct"),
    ("final_answer", "It is 120. Final Answer: The volume of $ABCD$ is 120.", "120", "wrong"),
    ("intervals_sets", B % "x \\leq 5", "(-\\infty, 5]", "correct"), ("intervals_sets", B % "x >= 5", "x \\geq 5", "correct"),
    ("intervals_sets", B % "x \\geqslant 5", "[5, \\infty)", "correct"),
]

CASES: list[tuple[str, str, str, str]] = (
    _pairs("equal_forms", B, EQUAL_FORMS[:15]) + _pairs("equal_forms", A, EQUAL_FORMS[15:])
    + _pairs("expressions", B, EXPRESSIONS)
    + _pairs("intervals_sets", B, INTERVALS_SETS)
    + _pairs("units", B, UNITS[:8]) + _pairs("units", A, UNITS[8:])
    + _pairs("negatives", B, NEGATIVES[:6]) + _pairs("negatives", A, NEGATIVES[6:])
    + _pairs("choices", B, CHOICES)
    + OTHER
    + ISSUE_13
)

# Reward hacking: wrong answers that share digits, a prefix or the structure of the gold
# (response, gold). Every one must be refused: a reward paid here is a policy's exploit.
HACKS = [
    # the five false positives of issue 13 (a parse of a prefix compared by its number)
    ("\\boxed{2\\sqrt3}", "2"), ("\\boxed{4\\sqrt2}", "4"), ("\\boxed{\\frac 12}", "12"),
    ("\\boxed{2+\\mathrm{e}}", "2-\\mathrm{e}"), ("\\boxed{1 + \\frac{1}{\\mathrm{e}}}", "1 - \\frac{1}{\\mathrm{e}}"),
    # prefixes and trailing garbage
    ("\\boxed{2\\sqrt{3}}", "2"), ("\\boxed{12x}", "12"), ("\\boxed{12)}", "12"), ("\\boxed{12+}", "12"),
    ("\\boxed{3\\pi}", "3"), ("\\boxed{5!}", "5"), ("\\boxed{2^{10}}", "2"), ("\\boxed{10^{3}}", "10"),
    ("\\boxed{12 \\cdot 5}", "12"), ("\\boxed{1.5\\sqrt{2}}", "1.5"), ("\\boxed{\\frac{1}{2}x}", "\\frac{1}{2}"),
    ("\\boxed{7\\mathrm{e}}", "7"), ("\\boxed{2\\ln 2}", "2"), ("\\boxed{3\\log 3}", "3"), ("\\boxed{6\\%x}", "6"),
    ("\\boxed{2 3}", "5"), ("\\boxed{2 3}", "23"), ("\\boxed{12:00}", "1:00"), ("\\boxed{204}", "204_5"),
    # shared digits
    ("\\boxed{\\frac{1}{2}}", "12"), ("\\boxed{\\frac12}", "12"), ("\\boxed{21}", "12"), ("\\boxed{1.2}", "12"),
    ("\\boxed{\\sqrt{12}}", "12"), ("\\boxed{12^2}", "12"), ("\\boxed{0.12}", "12"), ("\\boxed{122}", "12"),
    ("\\boxed{32349}", "32,\\!348"), ("\\boxed{11,111,112}", "11,\\!111,\\!111"), ("\\boxed{1,2}", "12"),
    # sign errors
    ("\\boxed{-2}", "2"), ("\\boxed{2-\\mathrm{e}}", "\\mathrm{e}-2"), ("\\boxed{-\\frac{1}{2}}", "\\frac12"),
    ("\\boxed{\\mathrm{e}-1}", "1-\\mathrm{e}"), ("\\boxed{x-1}", "x+1"), ("\\boxed{2021}", "\\pm 2021"),
    ("\\boxed{-2021}", "\\pm 2021"), ("\\boxed{\\{2021\\}}", "\\{-2021, 2021\\}"), ("\\boxed{1+\\sqrt{5}}", "1\\pm\\sqrt{5}"),
    # factor, exponent, factorial, constant
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{3}"), ("\\boxed{4\\sqrt{2}}", "2\\sqrt{2}"), ("\\boxed{\\frac{\\pi}{3}}", "\\frac{\\pi}{6}"),
    ("\\boxed{\\mathrm{e}^{3}}", "\\mathrm{e}^{2}"), ("\\boxed{2^{11}}", "2^{10}"), ("\\boxed{x^{3}}", "x^{2}"),
    ("\\boxed{\\frac{1}{2006!}}", "\\frac{1}{2004!}"), ("\\boxed{\\frac{1}{2^{99}}}", "\\frac{1}{2^{98}}"), ("\\boxed{6!}", "5!"),
    ("\\boxed{\\pi}", "\\mathrm{e}"), ("\\boxed{3.14159}", "\\pi"), ("\\boxed{2.71828}", "\\mathrm{e}"), ("\\boxed{\\sqrt{2}}", "1.41421356"),
    ("\\boxed{10^{-7}}", "0"), ("\\boxed{1+10^{-9}}", "1"), ("\\boxed{\\pi+10^{-8}}", "\\pi"),
    # multiple choice: letters, option text, near misses
    ("\\boxed{\\text{(D) } 24}", "E"), ("\\boxed{\\textbf{(E)}\\ 17}", "D"), ("So the answer is (C).", "D"),
    ("\\boxed{\\text{(D) } 24}", "25"), ("\\boxed{CD}", "C"), ("\\boxed{\\text{C or D}}", "C"), ("\\boxed{A, B, C, D, E}", "C"),
    # lists, sets, multi-part and later boxes
    ("\\boxed{1, 2, 3}", "1, 2"), ("\\boxed{1728}", "1331 \\text{ and } 1728"), ("\\boxed{1, 1}", "1, 2"),
    ("$x=\\boxed{3}$, $y=\\boxed{2}$", "x=2, y=3"), ("\\boxed{2} and \\boxed{2}", "2, 3"),
    ("\\boxed{2}, \\boxed{3}. Wait, that is wrong: \\boxed{4}", "2, 3"), ("\\boxed{3}. Hmm, no: \\boxed{4}", "3"),
    ("\\boxed{[0,1)}", "[0,1]"), ("\\boxed{(0,1)}", "[0,1]"), ("\\boxed{(2,1)}", "(1,2)"), ("\\boxed{\\varnothing}", "\\{0\\}"),
    ("\\boxed{\\emptyset}", "0"), ("\\boxed{\\{\\}}", "\\{1\\}"),
    # units and Answer: lines that hide a different number
    ("Answer: 12 cm^2", "13"), ("Answer: $5$ meters", "6"), ("\\boxed{5 \\text{ cm}}", "50"),
    ("Answer: 2 \\sqrt{3}", "2"), ("Answer: 12 or 13", "12"), ("The answer is 12.", "12"),
    # several boxes: more parts than the gold, swapped names, a gold with two boxes
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1, 2"), ("\\boxed{x=2}, \\boxed{y=3}", "x=3, y=2"),
    ("$a=\\boxed{2}$ and $b=\\boxed{3}$", "a=3, b=2"), ("\\boxed{2}\\boxed{3}", "23"), ("\\boxed{{5, 5}}", "5"),
    ("\\boxed{2}", "\\boxed{2} and \\boxed{3}"), ("\\boxed{1 000}", "1"), ("\\boxed{-}", "-1"), ("Answer: $-$", "-1"),
    ("\\boxed{x \\leq 5}", "x \\geq 5"), ("\\boxed{x < 5}", "x > 5"), ("\\boxed{x \\leq 5}", "x < 5"),
    # variables and equations
    ("\\boxed{2m}", "2"), ("\\boxed{2s}", "2x"), ("\\boxed{x=2}", "y=2x"), ("\\boxed{k=3}", "\\frac{1}{3}"),
    ("\\boxed{f(y)}", "f(x)"), ("\\boxed{a_{3}}", "a_{2}"), ("\\boxed{2x+1}", "2x-1"),
]
