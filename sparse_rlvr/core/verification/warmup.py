"""Warm the verifier once in the pool's forkserver, so every worker forked from it starts warm.

latex2sympy's ANTLR parser builds its prediction tables (DFA) on first sight of each grammar
path, and sympy fills its caches on first use: a cold worker spends most of its first few hundred
answers there. Importing this module (the forkserver preloads it) grades a spread of answer
shapes once; the forked workers inherit the tables and caches, and so does a worker that
replaces a killed one. Nothing here can fail the import: a shape that errors is skipped.
"""

from __future__ import annotations

import logging

SHAPES = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{3}{4}", "\\frac 34"), ("2\\sqrt{3}", "\\sqrt{12}"), ("\\sqrt[3]{2}", "2^{1/3}"),
    ("x^2+2x+1", "(x+1)^2"), ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}"), ("2-\\mathrm{e}", "2+e"),
    ("\\pi", "\\frac{\\pi}{2}"), ("\\sin^2 x + \\cos^2 x", "1"), ("\\tan^2(y)+1", "\\sec^2(y)"),
    ("\\log_2 8", "3"), ("\\ln 2", "\\log 2"), ("5!", "120"), ("\\binom{5}{2}", "10"), ("2+3i", "3i+2"),
    ("(2, \\infty)", "x > 2"), ("[-1, 3)", "-1 \\le x < 3"), ("(-\\infty,-1)\\cup(1,\\infty)", "(1,\\infty)"),
    ("\\{1, 2\\}", "2, 1"), ("\\pm 3", "\\{-3, 3\\}"), ("(1, 2)", "(2,1)"), ("\\emptyset", "\\varnothing"),
    ("y = 2x + 1", "2x - y + 1 = 0"), ("k = \\frac{1}{3}", "\\frac13"), ("x \\in [0, 1]", "[0,1]"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}"),
    ("50\\%", "0.5"), ("\\frac{1}{2004!}", "\\frac{1}{2006!}"), ("10^{-3}", "0.001"), ("-\\frac{1}{2}", "-0.5"),
    ("\\text{(C)}", "C"), ("\\text{Evelyn}", "\\text{evelyn}"), ("3 \\pm 2\\sqrt{2}", "3+2\\sqrt{2}, 3-2\\sqrt{2}"),
    ("a_3 = 2, a_{37} = 19", "a_{37} = 19, a_3 = 2"), ("f(x)", "f(y)"), ("|x - 1|", "|1 - x|"),
]


def warm() -> None:
    """Grade every shape once (errors ignored: warming must never stop a pool from starting)."""
    from sparse_rlvr.core.verification.equivalence import answers_equal

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for gold, pred in SHAPES:
        try:
            answers_equal(gold, pred)
        except Exception:
            continue


warm()
