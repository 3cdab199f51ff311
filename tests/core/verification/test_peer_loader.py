"""benchmarks/verifier.py reads a peer's pytest files (our own miniature here) into labelled pairs
with each test's settings, and boxes predictions as a model would."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PEER_TESTS = '''
import math
import pytest

@pytest.mark.parametrize("gold,pred,expected", [("$1$", "$1$", 1), ("$2$", "$3$", 0)])
def test_latex(gold, pred, expected):
    assert compare_strings(gold, pred, match_types=["latex"]) == expected

@pytest.mark.parametrize("gold, pred, expected, precision", [("$1/3$", "$0.33$", 1, 2)])
def test_precision(gold, pred, expected, precision):
    assert compare_strings(gold, pred, match_types=["latex", "expr"], precision=precision) == expected

@pytest.mark.parametrize("gold, pred, result", [("$x$", "$x$", 1), (f"{math.pi:.3f}", "$3.142$", 1)])
def test_defaults(gold, pred, result):
    assert int(verify(parse(gold), parse(pred))) == result

@pytest.mark.parametrize("pred,expected", [("A", ["a"])])
def test_not_a_pair(pred, expected):
    assert parse(pred) == expected
'''


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "verifier.py"
    spec = importlib.util.spec_from_file_location("bench_verifier", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_verifier"] = module
    spec.loader.exec_module(module)
    return module


def test_loads_pairs_with_their_settings(bench, tmp_path: Path) -> None:
    (tmp_path / "test_peer.py").write_text(PEER_TESTS)
    pairs, skipped = bench.load_peer_pairs(tmp_path)
    assert skipped == 1  # the f-string row is not a literal
    rows = [(p.gold, p.pred, p.expected) for p in pairs]
    assert rows == [("$1$", "$1$", True), ("$2$", "$3$", False), ("$1/3$", "$0.33$", True), ("$x$", "$x$", True)]
    assert pairs[0].settings == {"harness": "compare_strings", "match_types": ["latex"]}
    assert pairs[2].settings["precision"] == 2 and bench.tolerance_of(pairs[2].settings) == pytest.approx(0.01)
    assert pairs[3].settings == {"harness": "defaults"}
    assert bench.mv_direct(pairs[0].gold, pairs[0].pred, pairs[0].settings)
    assert not bench.mv_direct(pairs[1].gold, pairs[1].pred, pairs[1].settings)


@pytest.mark.parametrize(
    ("pred", "boxed"),
    [
        ("$\\frac13 $", "The answer is $\\boxed{\\frac13}$."),
        ("So $x = 2$, then $y = 5$.", "So $x = 2$, then $\\boxed{y = 5}$."),
        ("the number is not 10 which is 1,000.99€", "The answer is $\\boxed{1,000.99€}$."),
        ("Thus $\\boxed{7}$.", "Thus $\\boxed{7}$."),
        ("Final Answer: The final answer is $7$.", "Final Answer: The final answer is $7$."),
        ("Answer $ \n 9 \n $", "Answer $ \n 9 \n $"),  # inline math over lines: left unreadable
        ("Answer $ 1 \\$ = 9 $", "Answer $\\boxed{1 \\$ = 9}$"),
    ],
)
def test_box_prediction(bench, pred: str, boxed: str) -> None:
    assert bench.box_prediction(pred) == boxed


def test_quality_counts_false_positives(bench) -> None:
    assert bench.quality([True, True, False, False], [True, False, True, False]) == (0.5, 0.5, 0.5, 1)
