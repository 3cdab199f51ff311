"""Final-answer extraction from model text: pure string work, no sympy, nothing executed.

The final answer is whichever starts LAST, in the text after the last ``</think>``, of: a
``\\boxed{...}`` (nested braces), an ``Answer:`` line, or a sentence "the answer is (C)" naming
an option letter. Boxes written one after the other with only separators between them
(``\\boxed{1}, \\boxed{2}``, ``x = \\boxed{1} \\quad y = \\boxed{2}``) form one multi-part answer,
kept in :attr:`Extraction.parts`; a box after prose ("wait, no: \\boxed{4}") replaces what came
before. An unclosed box, or none of the three, is no answer: we never guess from the reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "no_answer", "truncated"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "Answer:" opening a line, or "Final Answer:" anywhere ("... = 120. Final Answer: ...").
_ANSWER_RE = re.compile(
    r"(?:(?:^|\n)[ \t>*#_]*(?:final\s+)?|(?<![A-Za-z])final\s+)answer[ \t*_]*:[ \t*]*(.*)", re.IGNORECASE
)
_ANSWER_IS_CHOICE = re.compile(r"\b(?:final\s+)?answer\s+is\s*:?\s*\*{0,2}\s*\(([A-Ea-e])\)(?=[\s.*]*(?:\n|$))", re.IGNORECASE)
_LEAD_IN = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s+is\s*:?\s*", re.IGNORECASE)
_CHOICE_RE = re.compile(
    r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*(?:\\(?:text|mathrm|textbf)\s*\{\s*)?\(?([A-Ea-e])\)?\s*\}?\s*\)?\s*\}?\s*[.)]?\s*$"
)
# An option letter followed by the option's text: "\text{(D) } 24", "\textbf{(E)}\ 17", "(C) 12".
_CHOICE_WITH_TEXT = re.compile(
    r"^\s*(?:\\text(?:bf)?\s*\{\s*)?\(([A-E])\)\s*\}?\s*(?:\\[ ,;:]|~|\s)*(?=\S)(.+)$"
)
# What may stand between the boxes of one multi-part answer: punctuation, math delimiters,
# spacing commands, "and"/"or", and labels such as "y =" or "a_{37} =".
_NAME = r"[A-Za-z](?:_\{?\w+\}?)?"
_LABEL = _NAME + r"\s*="
_SEPARATOR = re.compile(
    r"^(?:\s|[,;.$]|\\quad|\\qquad|\\[,;:! ]|\\[()\[\]]|\\text\s*\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b|" + _LABEL + r")*$"
)
_LABEL_BEFORE = re.compile(r"(" + _NAME + r")\s*=\s*\$?\s*$")


@dataclass(frozen=True)
class Extraction:
    """What the text's final answer is: ``answer`` is None unless ``status == "ok"``.

    ``parts`` holds every box of a multi-part final answer (one entry for a single box), each
    prefixed with its label (``x = 2``) when every box had one.
    """

    answer: str | None
    status: Status
    parts: tuple[str, ...] = field(default=())


def after_think(text: str) -> str:
    """The text after the last ``</think>`` (the whole text when there is none)."""
    idx = text.rfind("</think>")
    return text if idx < 0 else text[idx + len("</think>") :]


def _box_content(text: str, open_end: int, limit: int | None = None) -> str | None:
    """Content of a brace group whose ``{`` ends at ``open_end``; None when it does not close
    before ``limit`` (default: the end of the text)."""
    depth = 1
    for i in range(open_end, len(text) if limit is None else limit):
        ch = text[i]
        if ch == "{" and text[i - 1] != "\\":
            depth += 1
        elif ch == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_end:i]
    return None


def all_boxes(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, content) of every ``\\boxed{`` in order; content None when unclosed.

    A box must close before the next one opens (one pass over the text, whatever the number of
    boxes: a response of 50,000 unclosed boxes costs no more than one of its length).
    """
    matches = list(_BOX_RE.finditer(text))
    boxes = []
    for i, match in enumerate(matches):
        limit = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        content = _box_content(text, match.end(), limit)
        end = match.end() + len(content) + 1 if content is not None else limit
        boxes.append((match.start(), end, content))
    return boxes


def last_boxed(text: str) -> tuple[int, str | None] | None:
    """(start, content) of the last ``\\boxed{`` ; content None when the box is unclosed."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.start(), _box_content(text, last.end())


def box_group(text: str) -> list[tuple[int, int, str]]:
    """The last box and the boxes just before it with only separators in between."""
    boxes = all_boxes(text)
    if not boxes or boxes[-1][2] is None:
        return []
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        short = len(gap) < 10 and not re.search(r"[A-Za-z]", gap)
        if box[2] is None or not (short or (len(gap) < 200 and _SEPARATOR.match(gap))):
            break
        group.insert(0, box)
    return group  # type: ignore[return-value]


_GOLD_SEPARATOR = re.compile(r"\band\b|\bor\b|[,;]")


def gold_box_group(text: str) -> list[str]:
    """Distinct contents of a gold's last box and the boxes before it that are close (under 10
    characters apart) or joined by "and", "or", a comma or semicolon within 70 characters:
    math-verify's rule, so a gold ``\\boxed{1} no no \\boxed{2}`` is ``2``, and one that boxes
    ``004`` three times is ``004``."""
    boxes = [b for b in all_boxes(text) if b[2] is not None]
    if not boxes:
        return []
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        if not (len(gap) < 10 or (len(gap) < 70 and _GOLD_SEPARATOR.search(gap))):
            break
        group.insert(0, box)
    return list(dict.fromkeys(clean(c) for _, _, c in group if c and clean(c)))  # type: ignore[arg-type]


def _labelled_parts(text: str, group: list[tuple[int, int, str]]) -> tuple[str, ...]:
    """Contents of a box group, deduplicated in a row; ``label = content`` when all are labelled."""
    contents = [clean(c) for _, _, c in group]
    labels = []
    for start, _, _ in group:
        found = _LABEL_BEFORE.search(text[max(0, start - 40) : start])
        labels.append(found.group(1) if found else None)
    if len(group) > 1 and all(labels) and not any("=" in c for c in contents):
        contents = [f"{label} = {c}" for label, c in zip(labels, contents)]
    parts: list[str] = []
    for c in contents:
        if c and (not parts or parts[-1] != c):
            parts.append(c)
    return tuple(parts)


def last_answer_line(text: str) -> tuple[int, str] | None:
    """(start, rest of line) of the last ``Answer:`` line (DAPO's prompt format)."""
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return last.start(), last.group(1)


def _first_math(rest: str) -> tuple[str, int] | None:
    """(content, end) of a math span (``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]``) opening ``rest``."""
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_) and close in rest[len(open_) :]:
            end = rest.index(close, len(open_))
            return rest[len(open_) : end], end + len(close)
    return None


def _clean_answer_line(rest: str) -> str:
    """The answer of an Answer: line: a box in it, else its first sentence, unwrapped when it is
    one math span; a lead-in "The final answer is", quotes and bold markers are dropped. A
    sentence mixing words and math stays whole (so it is refused, never cut to a part)."""
    box = last_boxed(rest)
    if box is not None and box[1] is not None:
        return box[1].strip()
    rest = _LEAD_IN.sub("", rest.strip().strip("*_").strip())
    sentence = re.split(r"(?<!\d)\.(?:\s|$)|\.\s|\s+I hope\b", rest, maxsplit=1)[0]
    sentence = re.sub(r"^(?:\\?[\"']|[*_])+|(?:\\?[\"']|[*_])+$", "", sentence.strip()).rstrip(".").strip()
    math = _first_math(sentence)
    if math is not None and not sentence[math[1] :].strip(" .,;!"):
        return math[0].strip()
    return sentence


def clean(answer: str) -> str:
    """Remove presentation that never changes the value: bold markers, ``$``, outer spaces."""
    answer = answer.strip()
    answer = re.sub(r"^\*\*(.*)\*\*$", r"\1", answer, flags=re.S).strip()
    if len(answer) >= 2 and answer[0] == "$" and answer[-1] == "$":
        answer = answer.strip("$").strip()
    return answer.rstrip(".").strip()


def _from_line(rest: str) -> Extraction:
    """Extraction from the rest of an Answer: line."""
    inner = last_boxed(rest)
    if inner is not None and inner[1] is None:
        return Extraction(None, "truncated")
    answer = clean(_clean_answer_line(rest))
    return Extraction(answer, "ok", (answer,)) if answer else Extraction(None, "no_answer")


def _from_boxes(tail: str) -> Extraction:
    """Extraction from the last box (and the boxes written together with it)."""
    box = last_boxed(tail)
    if box is None:
        return Extraction(None, "no_answer")
    if box[1] is None:
        return Extraction(None, "truncated")
    answer = clean(box[1])
    if not answer:
        return Extraction(None, "no_answer")
    return Extraction(answer, "ok", _labelled_parts(tail, box_group(tail)) or (answer,))


def extract_final_answer(text: str) -> Extraction:
    """The final answer of ``text`` (see module docstring); truncated when its box is unclosed."""
    tail = after_think(text)
    box = last_boxed(tail)
    line = last_answer_line(tail)
    choice = list(_ANSWER_IS_CHOICE.finditer(tail))
    starts = {
        "box": box[0] if box else -1,
        "line": line[0] if line else -1,
        "choice": choice[-1].start() if choice else -1,
    }
    latest = max(starts, key=lambda k: starts[k])
    if starts[latest] < 0:
        return Extraction(None, "no_answer")
    if latest == "choice":
        letter = choice[-1].group(1).upper()
        return Extraction(letter, "ok", (letter,))
    if latest == "line":
        return _from_line(line[1])  # type: ignore[index]
    return _from_boxes(tail)


def choice_letter(answer: str) -> str | None:
    """The option letter when ``answer`` is only a choice like ``(C)``, ``\\textbf{(C)}``, ``C``."""
    match = _CHOICE_RE.match(answer.replace('"', "").replace("'", ""))
    return match.group(1).upper() if match else None


def choice_with_text(answer: str) -> tuple[str, str] | None:
    """(letter, option text) for ``\\text{(D) } 24``-style answers; None otherwise."""
    match = _CHOICE_WITH_TEXT.match(answer)
    if not match:
        return None
    text = match.group(2).strip().strip("}").strip()
    return (match.group(1), text) if text else None
