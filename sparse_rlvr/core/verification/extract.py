"""Final-answer extraction from model text: pure string work, no sympy, nothing executed.

The final answer is the LAST ``\\boxed{...}`` (nested braces) or ``Answer:`` line in the text
after the last ``</think>``, whichever starts later. An unclosed box, or no box and no
``Answer:`` line, is no answer: we never guess from the reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "no_answer", "truncated"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_RE = re.compile(r"(?:^|\n)[ \t>*#_]*(?:final\s+)?answer[ \t*_]*:[ \t*]*(.*)", re.IGNORECASE)
_CHOICE_RE = re.compile(
    r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*(?:\\(?:text|mathrm|textbf)\s*\{\s*)?\(?([A-Ea-e])\)?\s*\}?\s*\)?\s*\}?\s*[.)]?\s*$"
)


@dataclass(frozen=True)
class Extraction:
    """What the text's final answer is: ``answer`` is None unless ``status == "ok"``."""

    answer: str | None
    status: Status


def after_think(text: str) -> str:
    """The text after the last ``</think>`` (the whole text when there is none)."""
    idx = text.rfind("</think>")
    return text if idx < 0 else text[idx + len("</think>") :]


def _box_content(text: str, open_end: int) -> str | None:
    """Content of a brace group whose ``{`` ends at ``open_end``; None when it never closes."""
    depth = 1
    for i in range(open_end, len(text)):
        ch = text[i]
        if ch == "{" and text[i - 1] != "\\":
            depth += 1
        elif ch == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_end:i]
    return None


def last_boxed(text: str) -> tuple[int, str | None] | None:
    """(start, content) of the last ``\\boxed{`` ; content None when the box is unclosed."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.start(), _box_content(text, last.end())


def last_answer_line(text: str) -> tuple[int, str] | None:
    """(start, rest of line) of the last ``Answer:`` line (DAPO's prompt format)."""
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.start(), last.group(1)


def _clean_answer_line(rest: str) -> str:
    """Strip markdown bold, ``$`` delimiters and a trailing full stop from an Answer: line."""
    box = last_boxed(rest)
    if box is not None and box[1] is not None:
        return box[1].strip()
    rest = rest.strip().strip("*_").strip()
    if rest.startswith("$") and rest.count("$") >= 2:
        rest = rest.strip("$") if rest.startswith("$$") else rest[1 : rest.index("$", 1)]
    elif rest.startswith("\\(") and "\\)" in rest:
        rest = rest[2 : rest.index("\\)")]
    elif rest.startswith("\\[") and "\\]" in rest:
        rest = rest[2 : rest.index("\\]")]
    return rest.strip().strip("*_").rstrip(".").strip()


def clean(answer: str) -> str:
    """Remove presentation that never changes the value: bold markers, ``$``, outer spaces."""
    answer = answer.strip()
    answer = re.sub(r"^\*\*(.*)\*\*$", r"\1", answer, flags=re.S).strip()
    if len(answer) >= 2 and answer[0] == "$" and answer[-1] == "$":
        answer = answer.strip("$").strip()
    return answer.rstrip(".").strip()


def extract_final_answer(text: str) -> Extraction:
    """The final answer of ``text`` (see module docstring); truncated when its box is unclosed."""
    tail = after_think(text)
    box = last_boxed(tail)
    line = last_answer_line(tail)
    if line is not None and (box is None or line[0] > box[0]):
        inner = last_boxed(line[1])
        if inner is not None and inner[1] is None:
            return Extraction(None, "truncated")
        answer = clean(_clean_answer_line(line[1]))
        return Extraction(answer, "ok") if answer else Extraction(None, "no_answer")
    if box is None:
        return Extraction(None, "no_answer")
    if box[1] is None:
        return Extraction(None, "truncated")
    answer = clean(box[1])
    return Extraction(answer, "ok") if answer else Extraction(None, "no_answer")


def choice_letter(answer: str) -> str | None:
    """The option letter when ``answer`` is only a choice like ``(C)``, ``\\textbf{(C)}``, ``C``."""
    match = _CHOICE_RE.match(answer.replace('"', "").replace("'", ""))
    return match.group(1).upper() if match else None
