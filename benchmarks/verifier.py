"""Benchmark the math verifier beside math-verify and verl's graders, on three suites, in one run.

    .venv/bin/python benchmarks/verifier.py --peer-tests PATH/TO/Math-Verify/tests

Suites (label "correct" = positive):
1. labelled: tests/core/verification/cases.py (our own cases, every category of issue 13);
2. hacking: tests/core/verification/cases.py HACKS, wrong answers sharing digits, prefixes or
   structure with the gold (all negatives: any "correct" is a false positive);
3. peer: the (gold, prediction, expected) pairs of math-verify's own tests, read from a local
   checkout (``--peer-tests``; nothing of them is stored in this repository). Each pair keeps the
   extraction settings its test names; the prediction is boxed as a model would write it
   (:func:`box_prediction`). A few labels contradict the mathematics (PEER_LABEL_FIXES: a
   sign error labelled correct); they are corrected for every grader alike and listed.

Speed: answers/s of each suite's first pass (cold caches), then warm throughput over the
distinct answers of all suites for ours and verl's math-verify wrapper, interleaved in chunks.

Graders: ours (``score_batch``, 2 workers; a test naming ``precision`` p runs with
``tolerance=10^-p``), math-verify called directly with each test's
settings (on the boxed prediction, and on the original prediction as its own test does),
verl's ``math_verify`` wrapper (one call at a time, and from 2 threads) and verl's
``math_dapo``. Reported per suite: accuracy, precision, recall, false positives, answers/s.
Targets: zero false positives everywhere; on the peer pairs accuracy above math-verify's own;
throughput >= 2x verl's math-verify wrapper. Last, the hostile inputs of test_hostile.py:
worst seconds per answer against the hard deadline.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (gold, prediction) pairs of the peer suite whose label is mathematically wrong, with the fix.
PEER_LABEL_FIXES: dict[tuple[str, str], tuple[bool, str]] = {
    ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"): (False, "1 - 1/e is not 1 + 1/e (sign error)"),
}


@dataclass(frozen=True)
class PeerPair:
    """One (gold, prediction, expected) row of a peer test, with the settings its test names."""

    source: str
    gold: str
    pred: str
    expected: bool
    settings: dict = field(default_factory=dict)


# ---------------------------------------------------------------- peer suite loader (ast only)

_SETTING_NAMES = ("match_types", "precision", "strict", "allow_set_relation_comp")


def _parametrize(func: ast.FunctionDef) -> tuple[list[str], list[ast.expr]] | None:
    """(argument names, row nodes) of a ``@pytest.mark.parametrize`` decorator, if any."""
    for deco in func.decorator_list:
        if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize" and len(deco.args) >= 2:
            names, rows = deco.args[0], deco.args[1]
            if isinstance(names, ast.Constant) and isinstance(rows, (ast.List, ast.Tuple)):
                return [n.strip() for n in names.value.split(",")], list(rows.elts)
    return None


def _call_settings(func: ast.FunctionDef) -> dict | None:
    """Settings of the comparison the test makes: ``compare_strings(...)`` keywords (literals or
    names of parameters), or math-verify's defaults for ``verify(parse(gold), parse(pred))``."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            settings: dict = {"harness": "compare_strings"}
            for kw in node.keywords:
                if kw.arg in _SETTING_NAMES:
                    settings[kw.arg] = kw.value.id if isinstance(kw.value, ast.Name) else ast.literal_eval(kw.value)
            return settings
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "verify":
            return {"harness": "defaults"}
    return None


def load_peer_pairs(tests_dir: Path) -> tuple[list[PeerPair], int]:
    """Every (gold, pred, expected) row of the tests in ``tests_dir``; also how many rows were
    skipped (not literals, e.g. f-strings). Tests without gold and pred are not pairs."""
    pairs, skipped = [], 0
    for path in sorted(tests_dir.glob("test_*.py")):
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef):
                continue
            found, settings = _parametrize(func), _call_settings(func)
            if found is None or settings is None or not {"gold", "pred"} <= set(found[0]):
                continue
            names, rows = found
            label = "expected" if "expected" in names else "result"
            for row in rows:
                try:
                    values = dict(zip(names, ast.literal_eval(row)))
                except (ValueError, SyntaxError):
                    skipped += 1
                    continue
                row_settings = {k: values.get(v, v) if isinstance(v, str) else v for k, v in settings.items()}
                pairs.append(PeerPair(f"{path.name}::{func.name}", values["gold"], values["pred"], bool(values[label]), row_settings))
    return pairs, skipped


# ---------------------------------------------------------------- boxing a prediction

_MATH_SPAN = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)


def box_prediction(pred: str) -> str:
    """The prediction as a model asked to box its answer writes it.

    Left as written: a prediction that already has a box or a "final answer" sentence, and
    inline math broken over lines (not valid inline LaTeX; the peer labels it unreadable). One
    math span (``$x$``, ``\\[x\\]``...) or a bare formula: boxed. Prose: its last math span is
    boxed in place; prose without math: the text after its last "is" or colon is boxed
    (``... which is 1,000.99€`` -> ``\\boxed{1,000.99€}``).
    """
    text = pred.strip()
    if "\\boxed" in text or "\\fbox" in text or "final answer" in text.lower():
        return pred
    spans = list(_MATH_SPAN.finditer(text))
    if any("\n" in (m.group(2) or m.group(4) or "") for m in spans):
        return pred
    if len(spans) == 1 and spans[0].start() == 0 and spans[0].end() == len(text):
        inner = next(g for g in spans[0].groups() if g is not None)
        return f"The answer is $\\boxed{{{inner.strip()}}}$."
    if spans:
        last = spans[-1]
        inner = next(g for g in last.groups() if g is not None)
        return f"{text[: last.start()]}$\\boxed{{{inner.strip()}}}${text[last.end():]}"
    tail = re.split(r"\.(?:\s|$)", re.split(r"\bis\b|:", text)[-1].strip())[0].strip()
    return f"The answer is $\\boxed{{{tail or text}}}$."


def tolerance_of(settings: dict) -> float:
    """Our ``tolerance`` for a test that names math-verify's ``precision`` (decimals): 10^-precision."""
    return 10.0 ** -settings["precision"] if "precision" in settings else 0.0


# ---------------------------------------------------------------- graders

def mv_direct(gold: str, pred: str, settings: dict) -> bool:
    """math-verify as the peer test calls it (``compare_strings`` or plain ``parse``/``verify``)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if settings.get("harness") == "defaults":
        return bool(verify(parse(gold), parse(pred)))
    kinds = settings.get("match_types", ["latex", "expr"])
    targets = [LatexExtractionConfig(boxed_match_priority=0) if k == "latex" else ExprExtractionConfig() for k in kinds]
    return bool(
        verify(
            parse(gold, targets), parse(pred, targets), float_rounding=settings.get("precision", 6),
            strict=settings.get("strict", True), allow_set_relation_comp=settings.get("allow_set_relation_comp", False),
        )
    )


Grader = Callable[[list[str], list[str], list[dict]], list[bool]]


def graders() -> dict[str, Grader]:
    """Name -> grader over (responses, golds, settings); True means "paid as correct"."""
    from verl.utils.reward_score import math_dapo, math_verify

    from sparse_rlvr.core.verification.math import MathRewardConfig, score_batch

    def ours(responses: list[str], golds: list[str], settings: list[dict]) -> list[bool]:
        """score_batch once per tolerance the rows name (one batch when none does)."""
        verdicts: list[bool] = [False] * len(responses)
        for tol in sorted({tolerance_of(s) for s in settings}):
            rows = [i for i, s in enumerate(settings) if tolerance_of(s) == tol]
            config = MathRewardConfig(num_workers=2, tolerance=tol)
            results = score_batch([responses[i] for i in rows], [golds[i] for i in rows], config=config)
            for i, result in zip(rows, results):
                verdicts[i] = result["score"] > 0
        return verdicts

    return {
        "sparse_rlvr (batch, 2 workers)": ours,
        "math-verify direct (test settings)": lambda rs, gs, ss: [mv_direct(g, r, s) for r, g, s in zip(rs, gs, ss)],
        "verl math_verify": lambda rs, gs, ss: [math_verify.compute_score(r, g) > 0 for r, g in zip(rs, gs)],
        "verl math_verify (2 threads)": lambda rs, gs, ss: list(
            ThreadPoolExecutor(2).map(lambda rg: math_verify.compute_score(*rg) > 0, zip(rs, gs))
        ),
        "verl math_dapo": lambda rs, gs, ss: [math_dapo.compute_score(r, g)["score"] > 0 for r, g in zip(rs, gs)],
    }


# ---------------------------------------------------------------- scoring

def quality(verdicts: Sequence[bool], labels: Sequence[bool]) -> tuple[float, float, float, int]:
    """(accuracy, precision, recall, false positives) of boolean verdicts against labels."""
    tp = sum(v and lab for v, lab in zip(verdicts, labels))
    fp = sum(v and not lab for v, lab in zip(verdicts, labels))
    fn = sum(lab and not v for v, lab in zip(verdicts, labels))
    acc = sum(v == lab for v, lab in zip(verdicts, labels)) / max(len(labels), 1)
    return acc, tp / max(tp + fp, 1), tp / max(tp + fn, 1), fp


@dataclass
class Suite:
    """Responses, golds, per-row settings (peer pairs only) and labels of one suite."""

    name: str
    responses: list[str]
    golds: list[str]
    labels: list[bool]
    settings: list[dict]


def suites(peer_tests: Path | None) -> tuple[list[Suite], list[str]]:
    """The labelled, hacking and (when a checkout is given) peer suites, and notes to print."""
    from tests.core.verification.cases import CASES, HACKS

    out = [
        Suite("labelled", [c[1] for c in CASES], [c[2] for c in CASES], [c[3] == "correct" for c in CASES], [{}] * len(CASES)),
        Suite("hacking", [r for r, _ in HACKS], [g for _, g in HACKS], [False] * len(HACKS), [{}] * len(HACKS)),
    ]
    notes: list[str] = []
    if peer_tests is not None:
        pairs, skipped = load_peer_pairs(peer_tests)
        labels = [PEER_LABEL_FIXES.get((p.gold, p.pred), (p.expected, ""))[0] for p in pairs]
        fixed = [(p, PEER_LABEL_FIXES[(p.gold, p.pred)][1]) for p in pairs if (p.gold, p.pred) in PEER_LABEL_FIXES]
        out.append(Suite("peer", [box_prediction(p.pred) for p in pairs], [p.gold for p in pairs], labels, [p.settings for p in pairs]))
        out.append(Suite("peer (unboxed)", [p.pred for p in pairs], [p.gold for p in pairs], labels, [p.settings for p in pairs]))
        notes.append(f"peer pairs: {len(pairs)} from {peer_tests} ({skipped} rows not literal, skipped)")
        notes += [f"  label fixed: {p.source} gold {p.gold!r} pred {p.pred!r}: {why}" for p, why in fixed]
    return out, notes


def run(suite: Suite, grade: Grader) -> tuple[list[bool], float]:
    """Verdicts and answers/s of one grader on one suite."""
    start = time.perf_counter()
    verdicts = grade(suite.responses, suite.golds, suite.settings)
    return verdicts, len(suite.responses) / (time.perf_counter() - start)


def hostile_worst(deadline_s: float = 2.0) -> tuple[int, float]:
    """(cases, worst seconds per case) of tests/core/verification/test_hostile.py's inputs: the
    hard per-answer deadline must hold (deadline + 1 s)."""
    from sparse_rlvr.core.verification.math import MathRewardConfig, compute_score
    from tests.core.verification.test_hostile import HANGS, INJECTIONS, MALFORMED

    config, worst = MathRewardConfig(deadline_s=deadline_s), 0.0
    compute_score("math", "\\boxed{\\frac{2}{4}}", "0.5", config=config)  # the pool's one-time start is not timed
    for response in HANGS + INJECTIONS + MALFORMED:
        start = time.monotonic()
        compute_score("math", response, "1", config=config)  # type: ignore[arg-type]
        worst = max(worst, time.monotonic() - start)
    return len(HANGS + INJECTIONS + MALFORMED), worst


CHUNKS = 6
SPEED_GRADERS = ("sparse_rlvr (batch, 2 workers)", "verl math_verify", "verl math_verify (2 threads)")


def throughput(all_suites: list[Suite], all_graders: dict[str, Grader]) -> None:
    """Warm answers/s over every suite's answers (each grader's caches and pools warmed by the
    quality pass above), and ours over verl's math-verify wrapper. The answers go in CHUNKS
    chunks, each timed for every grader in turn, so a change of load on a shared machine falls
    on all graders alike. Distinct answers only: ours sends identical checks once."""
    rows = list(dict.fromkeys(r for s in all_suites if s.name != "peer (unboxed)" for r in zip(s.responses, s.golds)))
    seconds = dict.fromkeys(SPEED_GRADERS, 0.0)
    for k in range(CHUNKS):
        part = rows[k::CHUNKS]
        suite = Suite("chunk", [r for r, _ in part], [g for _, g in part], [False] * len(part), [{}] * len(part))
        for name in SPEED_GRADERS:
            seconds[name] += len(part) / run(suite, all_graders[name])[1]
    speeds = {name: len(rows) / t for name, t in seconds.items()}
    print(f"throughput, {len(rows)} distinct answers (warm, {CHUNKS} interleaved chunks): "
          + ", ".join(f"{name} {speed:.1f} ans/s" for name, speed in speeds.items()))
    ours = speeds[SPEED_GRADERS[0]]
    print(f"throughput ratio ours / verl math_verify: {ours / speeds[SPEED_GRADERS[1]]:.2f}x "
          f"(vs its 2-thread use: {ours / speeds[SPEED_GRADERS[2]]:.2f}x)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-tests", type=Path, help="tests/ folder of a local huggingface/Math-Verify checkout")
    parser.add_argument("--show-misses", action="store_true", help="print every pair ours gets wrong")
    args = parser.parse_args(argv)
    all_suites, notes = suites(args.peer_tests)
    all_graders = graders()
    warm = Suite("warm", ["\\boxed{\\frac{2}{4}}"] * 4, ["0.5"] * 4, [True] * 4, [{}] * 4)
    for grade in all_graders.values():
        run(warm, grade)  # start pools and imports before timing
    print(*notes, sep="\n")
    print(f"{'suite':15s} {'grader':36s} {'n':>5s} {'accuracy':>9s} {'precision':>9s} {'recall':>7s} {'FP':>4s} {'ans/s':>8s}")
    for suite in all_suites:  # ans/s here: first pass over the suite (cold parse caches)
        for name, grade in all_graders.items():
            if suite.name == "peer (unboxed)" and not name.startswith("math-verify"):
                continue
            verdicts, speed = run(suite, grade)
            acc, prec, rec, fp = quality(verdicts, suite.labels)
            print(f"{suite.name:15s} {name:36s} {len(suite.labels):5d} {acc:9.4f} {prec:9.4f} {rec:7.4f} {fp:4d} {speed:8.1f}")
            if args.show_misses and name.startswith("sparse_rlvr"):
                for r, g, lab, v in zip(suite.responses, suite.golds, suite.labels, verdicts):
                    if v != lab:
                        print(f"    MISS label={lab} gold={g[:80]!r} response={r[-120:]!r}")
    throughput(all_suites, all_graders)
    n, worst = hostile_worst()
    print(f"hostile suite: {n} cases, max {worst:.2f} s per case vs deadline 2.0 s + 1 s")


if __name__ == "__main__":
    main()
