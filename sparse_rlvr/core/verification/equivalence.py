"""Is a predicted final answer equal to the gold one? math-verify plus the rules it misses.

Runs inside the worker processes of :mod:`sparse_rlvr.core.verification.pool` (it may hang in sympy, the
pool kills it). Model text only ever reaches math-verify's LaTeX parser (latex2sympy) and our
regex rewrites: never ``eval``, ``sympify`` or ``parse_expr`` (math-verify's plain-expression
extractor, which calls ``parse_expr``, is not used at all).

Precision first: an answer is compared only when the WHOLE of it parses (:func:`mv_parse`). A
parse of a part of it (``2`` out of ``2\\sqrt3``) is no answer, so it can never be paid.

Order of checks, cheapest and most certain first: choice letters (with the option's text),
normalized string equality, exact decimal policy (0.142857 is not 1/7 unless a tolerance allows
it), lists/sets as multisets and named values by name, then math-verify's ``verify`` on the
whole-answer parses of the rewritten forms (plain, percent /100, interval, equation as written).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

from sparse_rlvr.core.verification import normalize as nz
from sparse_rlvr.core.verification.extract import choice_letter, choice_with_text

_NORMALIZATION = None
_UNPARSED = object()


def _normalization() -> object:
    """math-verify's LaTeX normalisation, minus the two steps that drop parts of an answer.

    ``units`` is off: it deletes any trailing ``\\text{...}`` (``2-\\mathrm{e}`` becomes ``2-``) and
    one-letter "units" (``x + c`` loses ``c``); our own :func:`normalize.strip_units` removes only
    known units after a number. ``malformed_operators`` is on: ``\\sqrt3`` and ``\\frac 12`` are
    read as ``\\sqrt{3}`` and ``\\frac{1}{2}`` instead of failing.
    """
    global _NORMALIZATION
    if _NORMALIZATION is None:
        from latex2sympy2_extended.math_normalization import NormalizationConfig

        _NORMALIZATION = NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="all", equations=False
        )
    return _NORMALIZATION


# Shapes latex2sympy reads as something else than what is written: "2 3" (read as 5) and a
# number with a base subscript "204_5" (read as 204). Such an answer is not understood.
_AMBIGUOUS = re.compile(r"\d\s+\d|\d_\{?\d")


@lru_cache(maxsize=4096)
def _parse_whole(latex: str) -> object:
    """sympy value of the WHOLE answer, or ``_UNPARSED``; never a value of a part of it.

    math-verify's ``parse`` searches text for something it can read: when the LaTeX fails
    (``2\\sqrt3``), its plain-number fallback returns the leading ``2``, and its units step cuts
    ``\\mathrm{e}``; comparing such a prefix paid ``2`` for ``2\\sqrt3``. Here the normalised
    answer goes to latex2sympy as one string and any failure means "not understood".
    """
    from latex2sympy2_extended.math_normalization import normalize_latex
    from math_verify.parser import parse_latex_cached

    normalized = normalize_latex(latex, _normalization())
    if not normalized or _AMBIGUOUS.search(normalized) or _is_prose(normalized):
        return _UNPARSED
    try:
        value = parse_latex_cached(normalized)
    except Exception:
        return _UNPARSED
    return _UNPARSED if _undefined(value) else value


_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_FUNCTIONS = {"sin", "cos", "tan", "sec", "csc", "cot", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan",
              "log", "exp", "sqrt", "max", "min", "gcd", "lcm", "mod", "det", "infty"}


def _is_prose(latex: str) -> bool:
    """Whether an answer is a sentence ("The largest $n$ is 34"): two or more plain words outside
    ``\\text{}``. latex2sympy would read it as a product of letters; it is no answer."""
    words = _WORD.findall(re.sub(r"\\(?:text|mathrm|mbox|begin|end)\s*\{[^{}]*\}", " ", latex))
    return sum(w.lower() not in _FUNCTIONS for w in words) >= 2


def _undefined(value: object) -> bool:
    """Whether a parse holds complex infinity or NaN (``12:00`` reads as 12/0): no answer."""
    import sympy

    try:
        return bool(value.has(sympy.zoo, sympy.nan))  # type: ignore[attr-defined]
    except AttributeError:
        return False


def mv_parse(latex: str) -> list:
    """``[value]`` when the whole ``latex`` answer parses, else ``[]`` (cached per worker process)."""
    value = _parse_whole(latex)
    return [] if value is _UNPARSED else [value]


def mv_equal(gold: str, pred: str, tolerance: float = 0.0) -> bool:
    """math-verify verdict (gold first: verify is not symmetric) on whole-answer parses only.

    With ``tolerance`` > 0, numbers inside structures (intervals, matrices) are compared at
    ``-log10(tolerance)`` decimals (math-verify's ``float_rounding``); else at its default 6,
    and two plain numbers must then agree to 1e-12 (see :func:`_numbers_differ`).
    """
    from math_verify import verify

    g, p = mv_parse(gold), mv_parse(pred)
    if not (g and p):
        return False
    fast = _plain_verdict(g[0], p[0], tolerance)
    if fast is not None:
        return fast
    digits = max(0, round(-math.log10(tolerance))) if tolerance > 0 else 6
    return bool(verify(g, p, float_rounding=digits, timeout_seconds=None)) and not _numbers_differ(g[0], p[0], tolerance)


def _plain_verdict(gold: object, pred: object, tolerance: float) -> bool | None:
    """A verdict without sympy's ``simplify`` (math-verify's slow step): the same parse is equal;
    two plain numbers (at 50 digits) are equal when they agree to 40 and differ when they disagree
    beyond ``max(1e-12, tolerance)``. None leaves it to math-verify."""
    import sympy

    if gold == pred:
        return True
    if not all(isinstance(x, sympy.Expr) and not isinstance(x, sympy.MatrixExpr) for x in (gold, pred)):
        return None
    try:
        if not (gold.is_number and pred.is_number):  # type: ignore[attr-defined]
            return None
        g, p = gold.evalf(50), pred.evalf(50)  # type: ignore[attr-defined]
        scale = max(abs(g), abs(p))
        if scale == 0:
            return True
        rel = abs(g - p) / scale  # sympy Floats at 50 digits: 1/2004! is not 0 here
        if bool(rel > max(1e-12, tolerance)):
            return False
        return True if bool(rel < 1e-40) and tolerance == 0 else None
    except Exception:  # not comparable as numbers (sympy refuses): math-verify decides
        return None


def _numbers_differ(gold: object, pred: object, tolerance: float = 0.0) -> bool:
    """Guard against math-verify's 6-digit float rounding: 1/2004! is not 1/2006!.

    Only for two pure numbers: their relative difference at 50 digits must be below 1e-12
    (or the caller's ``tolerance`` when larger).
    """
    import sympy

    if not all(isinstance(x, sympy.Expr) and not isinstance(x, sympy.MatrixExpr) for x in (gold, pred)):
        return False
    try:
        if not (gold.is_number and pred.is_number):
            return False
        g, p = gold.evalf(50), pred.evalf(50)
        scale = max(abs(g), abs(p))
        if scale == 0:
            return False
        return bool(abs(g - p) / scale > max(1e-12, tolerance))
    except Exception:  # sympy may fail on exotic values; math-verify's verdict then stands
        return False


def _numeric_value(latex: str) -> complex | None:
    """Numeric value of a trusted (gold) answer via math-verify's parse; None if not a number."""
    parsed = mv_parse(latex)
    if not parsed:
        return None
    try:
        return complex(parsed[0].evalf(30))
    except (TypeError, ValueError, AttributeError):
        return None


def _decimal_policy(gold: str, pred: str, tolerance: float) -> bool | None:
    """Verdict when ``pred`` is a plain decimal: exact unless ``tolerance`` (relative) allows."""
    value = nz.decimal_value(pred)
    if value is None:
        return None
    gold_dec = nz.decimal_value(gold)
    if gold_dec is not None:
        return abs(gold_dec - value) <= tolerance * max(1, abs(gold_dec))
    gold_value = _numeric_value(gold)
    if gold_value is None or gold_value.imag:
        return None
    if tolerance == 0:
        return _is_exact(gold, value)
    return abs(gold_value.real - float(value)) <= tolerance * max(1.0, abs(gold_value.real))


def _is_exact(gold: str, value: Fraction) -> bool:
    """Whether the gold's exact value equals the decimal ``value`` (e.g. 1/2 = 0.5, 1/7 != 0.142857)."""
    import sympy

    parsed, exact = mv_parse(gold)[0], sympy.Rational(value.numerator, value.denominator)
    try:
        if parsed.is_Rational:
            return bool(parsed == exact)
        if parsed.is_number and abs(parsed.evalf(40) - exact) > 1e-30:
            return False
        return bool(sympy.simplify(parsed - exact) == 0)
    except Exception:
        return False


def _forms(answer: str) -> list[str]:
    """Rewritten candidates of one answer: units stripped, repeating decimal, interval form."""
    s = nz.drop_thousands(nz.strip_units(nz.basic(answer)))
    s = nz.repeating_to_fraction(s)
    return list(dict.fromkeys([s, nz.inequality_to_interval(s)]))


def _choice_parts(answer: str) -> tuple[str | None, str | None]:
    """(option letter, option text) of an answer: ``(C)`` -> (C, None), ``\\text{(D) } 24`` ->
    (D, 24), ``24`` -> (None, 24)."""
    letter = choice_letter(answer)
    if letter is not None:
        return letter, None
    with_text = choice_with_text(answer)
    return with_text if with_text is not None else (None, answer)


def _choice_verdict(gold: str, pred: str, options: dict[str, str] | None, tolerance: float) -> bool | None:
    """Verdict for multiple-choice answers: letters compare as letters, texts as answers, a
    letter against a text through the options. None when neither side names an option."""
    (g, g_text), (p, p_text) = _choice_parts(gold), _choice_parts(pred)
    if g is None and p is None:
        return None
    if g is not None and p is not None:
        return g == p
    if g_text is not None and p_text is not None:
        return single_equal(g_text, p_text, tolerance, None)
    if not options:
        return False if g is not None else None
    letter, text = (g, p_text) if g is not None else (p, g_text)
    option = options.get(letter or "")
    return option is not None and text is not None and single_equal(option, text, 0.0, None)


def single_equal(gold: str, pred: str, tolerance: float, options: dict[str, str] | None) -> bool:
    """Whether one predicted answer equals one gold answer (no list splitting)."""
    verdict = _choice_verdict(gold, pred, options, tolerance)
    if verdict is not None:
        return verdict
    golds, preds = _forms(gold), _forms(pred)
    if any(g == p for g in golds for p in preds):
        return True
    (g_plain, g_pct), (p_plain, p_pct) = nz.strip_percent(golds[0]), nz.strip_percent(preds[0])
    if g_pct or p_pct:
        return _percent_equal(g_plain, g_pct, p_plain, p_pct, tolerance)
    decided = _decimal_policy(golds[0], preds[0], tolerance)
    if decided is not None:
        return decided
    if len(golds) == 2 and len(preds) == 2 and mv_parse(golds[1]) and mv_parse(preds[1]):
        return mv_equal(golds[1], preds[1], tolerance)  # two inequalities: their intervals decide
    if any(mv_equal(g, p, tolerance) for g in golds for p in preds):
        return True
    raw_g, raw_p = gold.strip().strip("$"), pred.strip().strip("$")  # equations keep their "y ="
    return (raw_g, raw_p) != (golds[0], preds[0]) and "=" in raw_g + raw_p and mv_equal(raw_g, raw_p, tolerance)


def _percent_equal(g: str, g_pct: bool, p: str, p_pct: bool, tolerance: float) -> bool:
    """``50\\%`` equals ``50`` and ``0.5`` (and the reverse): compare both readings."""
    if single_equal(g, p, tolerance, None):
        return True
    scaled_g = f"\\frac{{{g}}}{{100}}" if g_pct else g
    scaled_p = f"\\frac{{{p}}}{{100}}" if p_pct else p
    return mv_equal(scaled_g, scaled_p, tolerance)


def quick_verdict(gold: str, pred: str, tolerance: float) -> bool | None:
    """A verdict from string work alone (no sympy; safe in the caller): two choice letters, or two
    plain decimals after unit/thousands rewrites. None means "ask a worker"."""
    g_letter, p_letter = choice_letter(gold), choice_letter(pred)
    if g_letter is not None and p_letter is not None:
        return g_letter == p_letter
    g_forms, p_forms = _forms(gold), _forms(pred)
    if "%" in g_forms[0] + p_forms[0]:
        return None
    g_value, p_value = nz.decimal_value(g_forms[0]), nz.decimal_value(p_forms[0])
    if g_value is None or p_value is None:
        return None
    return abs(g_value - p_value) <= tolerance * max(1, abs(g_value))


_LABELLED = re.compile(r"^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*(.+)$", re.S)


def _label(part: str) -> tuple[str | None, str]:
    """(label, value) of ``a_{3} = 2`` (label ``a_3``); (None, part) when unlabelled."""
    match = _LABELLED.match(part)
    if not match or "=" in match.group(2):
        return None, part
    return match.group(1).replace("{", "").replace("}", ""), match.group(2).strip()


def _named(parts: list[str]) -> bool:
    """Whether the parts are distinct named values (``x=1, y=2``), not solutions of one unknown."""
    labels = [_label(p)[0] for p in parts]
    return all(labels) and len(set(labels)) == len(labels)


def _parts_equal(g_parts: list[str], p_parts: list[str], tolerance: float, options: dict[str, str] | None) -> bool:
    """Lists: named values by name (or in order when only one side names them); solutions as multisets."""
    if _named(g_parts) or _named(p_parts):
        g_pairs, p_pairs = [_label(g) for g in g_parts], [_label(p) for p in p_parts]
        if _named(g_parts) and _named(p_parts):
            by_name = dict(g_pairs)
            return set(by_name) == {n for n, _ in p_pairs} and all(
                single_equal(by_name[n], v, tolerance, options) for n, v in p_pairs
            )
        return all(single_equal(g, p, tolerance, options) for (_, g), (_, p) in zip(g_pairs, p_pairs))
    remaining = [_label(g)[1] for g in g_parts]
    for part in p_parts:
        value = _label(part)[1]
        match = next((i for i, g in enumerate(remaining) if single_equal(g, value, tolerance, options)), None)
        if match is None:
            return False
        remaining.pop(match)
    return True


def answers_equal(gold: str, pred: str, tolerance: float = 0.0, options: dict[str, str] | None = None) -> bool:
    """Whether ``pred`` is the gold answer; lists and sets of solutions compare as multisets."""
    g_parts, p_parts = nz.parts(gold), nz.parts(pred)
    if len(g_parts) <= 1 and len(p_parts) <= 1:
        return single_equal(gold, pred, tolerance, options)
    if len(g_parts) != len(p_parts):
        return single_equal(gold, pred, tolerance, options) if len(p_parts) > 1 and len(g_parts) > 1 else False
    return _parts_equal(g_parts, p_parts, tolerance, options)
