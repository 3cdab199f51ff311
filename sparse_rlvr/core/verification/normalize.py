"""String rewrites that make a final answer comparable: pure regex work, nothing executed.

Each function does one rewrite math-verify misses (units, degrees, percent, repeating decimals,
inequalities as intervals, thousands separators, list splitting) and returns plain LaTeX.
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNIT_WORDS = (
    "degrees?|degs?|cm|mm|km|m|meters?|centimeters?|inches|inch|feet|foot|ft|miles?|units?|"
    "square units|sq units|seconds?|secs?|s|minutes?|mins?|hours?|hrs?|days?|weeks?|years?|"
    "dollars?|cents?|kg|g|grams?|pounds?|lbs?|liters?|ml|L|mph|km/h|people|students|ways|points"
)
_TRAILING_TEXT_UNIT = re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s*(?:" + _UNIT_WORDS + r")\s*\}(\^\{?[23]\}?)?\s*$")
# A bare one-letter unit ("2m", "5 s") is as likely a variable: only a \text{} one, or one with a
# unicode power ("5 m²"), is dropped.
_BARE_UNIT_WORDS = "|".join(w for w in _UNIT_WORDS.split("|") if len(w) > 1)
_TRAILING_WORD_UNIT = re.compile(
    r"(?<=[\d}])\s*(?:(?:" + _BARE_UNIT_WORDS + r")(\^\{?[23]\}?)?|(?:" + _UNIT_WORDS + r")[²³])\s*$"
)
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_REPEATING = re.compile(r"^([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:(?:,\d{3})+|(?: \d{3})+)(?:\.\d+)?$")
_REL = r"(<=|>=|<|>|\\leqslant|\\geqslant|\\leq|\\geq|\\le|\\ge|≤|≥)"  # longest first
_ONE_SIDED = re.compile(r"^[a-zA-Z]\s*" + _REL + r"\s*(.+)$")
_TWO_SIDED = re.compile(r"^(.+?)\s*" + _REL + r"\s*[a-zA-Z]\s*" + _REL + r"\s*(.+)$")


def basic(answer: str) -> str:
    """Presentation-only rewrites: unicode minus, ``$``, ``\\left``/``\\right``, spacing commands,
    thin-space thousands (``32,\\!349``), ``\\dfrac``, text styles, ``\\varnothing``, sets in
    bare braces (``{1, 2}`` -> ``\\{1, 2\\}``)."""
    s = answer.replace("−", "-").replace("\u2212", "-").replace("\\$", "").replace("$", "")
    s = re.sub(r",\\!\s*(?=\d{3}(?!\d))|\s*\{\s*,\s*\}\s*", ",", s)
    s = s.replace("\\!", "").replace("\\,", "")
    s = re.sub(r"\\(?:quad|qquad|;|:)|(?<!\\)\\ |~", " ", s)  # not "\\\\ " (a matrix row end)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\text(?:bf|normal|rm|it)\s*\{", r"\\text{", s).replace("\\varnothing", "\\emptyset")
    s = re.sub(r"\\displaystyle", "", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])", r"\\pi", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^[a-zA-Z]\s*=\s*(?=[^=]+$)", "", s)  # "x = 5" -> "5" (single assignment only)
    return _bare_braces(s.strip())


def _bare_braces(s: str) -> str:
    """``{a, b}`` (one brace group around a list) -> ``\\{a, b\\}``: a set written without
    backslashes; ``{5}`` alone stays as it is."""
    if not (s.startswith("{") and s.endswith("}")) or "," not in s:
        return s
    depth = 0
    for i, ch in enumerate(s):
        depth += (ch == "{") - (ch == "}")
        if depth == 0 and i < len(s) - 1:
            return s
    return "\\{" + s[1:-1] + "\\}"


def strip_units(answer: str) -> str:
    """Drop a trailing unit, degree sign or currency sign: ``30^\\circ`` -> ``30``, ``\\$5`` -> ``5``."""
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\degree", "", answer)
    s = s.replace("\\$", "").replace("$", "").replace("€", "").replace("£", "")
    s = _TRAILING_TEXT_UNIT.sub("", s)
    s = _TRAILING_WORD_UNIT.sub("", s)
    return s.strip() or answer


def strip_percent(answer: str) -> tuple[str, bool]:
    """(answer without a trailing percent sign, whether it had one)."""
    s = answer.strip()
    for sign in ("\\%", "%", "\\text{%}", "\\text{ percent}", "\\text{percent}", "percentage", "percent", "pct"):
        if s.endswith(sign):
            return s[: -len(sign)].strip(), True
    return s, False


def drop_thousands(answer: str) -> str:
    """``1,000,000`` -> ``1000000`` (only the exact thousands pattern, never a list like 1,2)."""
    if _THOUSANDS.match(answer):
        return answer.replace(",", "").replace(" ", "")
    return answer.replace("{,}", "")


def repeating_to_fraction(answer: str) -> str:
    """``0.\\overline{3}`` -> ``\\frac{1}{3}``, ``0.1\\overline{6}`` -> ``\\frac{1}{6}``; else unchanged."""
    match = _REPEATING.match(answer.replace(" ", ""))
    if not match:
        return answer
    sign, whole, fixed, rep = match.groups()
    base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    value = base + Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
    value = -value if sign == "-" else value
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _bound(rel: str) -> tuple[bool, bool]:
    """(is an upper bound on the variable, is inclusive) for ``x REL value``."""
    upper = rel in ("<", "<=", "\\le", "\\leq", "\\leqslant", "≤")
    inclusive = rel not in ("<", ">")
    return upper, inclusive


def inequality_to_interval(answer: str) -> str:
    """``x > 2`` -> ``(2, \\infty)``, ``-1 \\le x < 3`` -> ``[-1, 3)``; else unchanged."""
    s = answer.strip()
    two = _TWO_SIDED.match(s)
    if two and _bound(two.group(2))[0] == _bound(two.group(3))[0]:
        lo, rel1, rel2, hi = two.groups()
        if not _bound(rel1)[0]:  # "5 > x > 1": flip to ascending order
            lo, hi, rel1, rel2 = hi, lo, rel2, rel1
        left = "[" if _bound(rel1)[1] else "("
        right = "]" if _bound(rel2)[1] else ")"
        return f"{left}{lo.strip()}, {hi.strip()}{right}"
    one = _ONE_SIDED.match(s)
    if one:
        rel, value = one.groups()
        upper, inclusive = _bound(rel)
        if upper:
            return f"(-\\infty, {value.strip()}{']' if inclusive else ')'}"
        return f"{'[' if inclusive else '('}{value.strip()}, \\infty)"
    return answer


def split_top_level(answer: str) -> list[str]:
    """Split a list of solutions at top-level commas / ``and`` / ``or``; braces and brackets kept."""
    s = answer.strip()
    if s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    if s.startswith("\\pm") and "," not in s:  # "\pm 3" is the two solutions 3 and -3
        return [s[3:].strip(), f"-{s[3:].strip()}"]
    s = re.sub(r"\s*(?:\\text\{\s*(?:and|or)\s*\}|\band\b|\bor\b)\s*", ",", s)
    parts, depth, current = [], 0, ""
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch in ",;" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def decimal_value(answer: str) -> Fraction | None:
    """Exact value of a plain decimal literal such as ``0.142857``; None for anything else."""
    s = re.sub(r"^([+-])\s+", r"\1", answer.strip())  # "- 5" is -5, but "2 3" is not 23
    return Fraction(s) if _DECIMAL.match(s) else None


def squash(answer: str) -> str:
    """Whitespace removed except between two word characters (``2 3`` is not ``23``)."""
    return re.sub(r"(?<!\w)\s+|\s+(?!\w)", "", answer)


def parts(answer: str) -> list[str]:
    """The top-level parts of an answer (one part for a single value)."""
    return split_top_level(drop_thousands(strip_units(basic(answer))))
