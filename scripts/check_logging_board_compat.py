"""Check our RL Logging Board dump against the viewer's own app, run headless.

    git --git-dir=<mirror of HarderThenHarder/RLLoggingBoard> worktree add /tmp/rlboard   # or a clone
    python3 -m venv /tmp/board-venv
    /tmp/board-venv/bin/pip install -r /tmp/rlboard/requirments.txt scipy matplotlib
    .venv/bin/python scripts/check_logging_board_compat.py --app /tmp/rlboard --board-python /tmp/board-venv/bin/python

It writes a small dump with `write_logging_board_step` (steps 1-3, then a resume from step 2 that
writes steps 2-5 again; hostile tokens, an empty response, non-finite numbers, ground truths),
then drives the app's `rl_logging_board.py` with `streamlit.testing.v1.AppTest` in the board venv
(the app's pinned streamlit/plotly stay out of the project's venv): it types the board root,
picks the run, presses "Load & View", then visits every step and every sample of each step.
Exit status 0 when the app loads every line, lists steps 1-5 once each in order (its session
data, reward table and every step curve), and raises nothing and shows no error on any page.

The CI tests (tests/training/monitor/test_logging_board_on_cpu.py) assert the same format
properties directly; this script is the check against the real app, which CI cannot fetch.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

EXPERIMENT = "sparse_rlvr_compat"
STEPS = [1, 2, 3, 4, 5]


def write_dump(root: Path) -> None:
    """The dump our trainer would write for five steps, with a resume from step 2 in the middle."""
    from sparse_rlvr.training.monitor.logging_board import write_logging_board_step
    from sparse_rlvr.training.monitor.samples import ShiftSample

    def sample(uid: str, tokens: list[str], reward: float, truth: str | None, **overrides) -> ShiftSample:
        n = len(tokens)
        fields = dict(uid=uid, prompt=f"What is {uid}?", response="".join(tokens), tokens=tokens, token_ids=list(range(n)),
                      logprobs=[-0.1 * (i + 1) for i in range(n)], ref_logprobs=[-0.15 * (i + 1) for i in range(n)],
                      entropy=[0.5] * n, js=[0.01 * i for i in range(n)], reward=reward, ground_truth=truth)
        return ShiftSample(**(fields | overrides))

    def step_samples(step: int, tag: str) -> list[ShiftSample]:
        return [
            sample(f"{tag}-plain", ["The", " answer", " is", " 5", "."], reward=step / 10, truth="5"),
            sample(f"{tag}-hostile", ["</script><img src=x onerror=alert(1)>", "\ud800", "\n", "~", " é"], reward=1.0,
                   truth="\\frac{1}{2}"),
            sample(f"{tag}-empty", [], reward=0.0, truth="7"),
            sample(f"{tag}-nonfinite", ["a", "b", "c"], reward=math.nan, truth=None,
                   logprobs=[-0.5, math.nan, -math.inf], ref_logprobs=[-math.inf, -1.0, -0.2], js=[0.1, math.nan, 0.0]),
        ]

    for step in STEPS[:3]:
        write_logging_board_step(root, step, step_samples(step, "first"), experiment=EXPERIMENT)
    for step in STEPS[1:]:  # resumed from the step-1 checkpoint: steps 2 and 3 are redone
        write_logging_board_step(root, step, step_samples(step, "resumed"), experiment=EXPERIMENT)


def drive_app(app: Path, root: Path) -> dict:
    """Run inside the board venv: what the app shows for the dump under `root`."""
    from streamlit.testing.v1 import AppTest

    report: dict = {"problems": []}

    def look(where: str) -> None:
        for exception in at.exception:
            report["problems"].append(f"{where}: exception {exception.message[:300]}")
        for error in at.error:
            report["problems"].append(f"{where}: st.error {str(error.value)[:300]}")

    at = AppTest.from_file(str(app / "rl_logging_board.py"), default_timeout=300)
    at.run()
    _by_label(at.sidebar.text_input, "Log(s) Root Path").set_value(str(root)).run()
    look("root typed")
    chooser = _by_label(at.sidebar.selectbox, "Choose Log Name")
    report["runs_listed"] = list(chooser.options)
    chooser.set_value(EXPERIMENT).run()
    _by_label(at.sidebar.button, "Load & View").click().run()
    look("loaded")
    report["toasts"] = [str(t.value) for t in at.toast]
    data = at.session_state["logging_data"] if "logging_data" in at.session_state else {}
    report["steps_loaded"] = [int(s) for s in data]
    report["samples_per_step"] = {int(s): len(v["prompt"]) for s, v in data.items()}
    report["reward_table_steps"] = [int(s) for s in at.session_state["reward_df"].index] if data else []
    report["curves"] = _curve_steps(at)
    pages = 0
    for step in report["steps_loaded"]:
        stepper = _stepper(at)
        if stepper is not None:
            stepper.set_value(step).run()
        for index in range(report["samples_per_step"][step]):
            try:
                _by_label(at.number_input, "Sample index in current step batch").set_value(index).run()
            except LookupError as missing:  # the page died before drawing its sample view
                look(f"step {step}")
                report["problems"].append(f"step {step}: no sample view ({missing})")
                break
            look(f"step {step} sample {index}")
            pages += 1
    report["sample_pages_shown"] = pages
    return report


def _by_label(widgets, prefix: str):
    for widget in widgets:
        if widget.label.strip().startswith(prefix):
            return widget
    raise LookupError(f"no widget labelled {prefix!r} (found {[w.label for w in widgets]})")


def _stepper(at):
    """The step slider (evenly spaced steps) or selectbox the app shows; None with a single step."""
    for widgets in (at.slider, at.selectbox):
        for widget in widgets:
            if widget.label.startswith("Step Index"):
                return widget
    return None


def _curve_steps(at) -> dict[str, list]:
    """x values of each step curve's mean line (the app draws a shaded band, then the line)."""
    curves = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = (spec.get("layout", {}).get("title") or {}).get("text", "")
        if "Step level" not in title:
            continue
        for trace in spec["data"]:
            if trace.get("fill") != "toself":
                curves[f"{title} / {trace.get('name')}"] = trace.get("x")
    return curves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, required=True, help="checkout of HarderThenHarder/RLLoggingBoard")
    parser.add_argument("--board-python", type=Path, required=True, help="python of a venv with the app's requirements")
    parser.add_argument("--keep", type=Path, help="write the dump here (kept) instead of a temporary folder")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)  # internal: run in the board venv
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive_app(args.app, args.drive)))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch) / "board"
        write_dump(root)
        run = subprocess.run([str(args.board_python), __file__, "--app", str(args.app), "--board-python", "-",
                              "--drive", str(root)], capture_output=True, text=True, cwd=args.app, timeout=1800)
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-5000:], sep="\n", file=sys.stderr)
            return 2
        report = json.loads(run.stdout.strip().splitlines()[-1])
    return _verdict(report)


def _verdict(report: dict) -> int:
    expected = {step: 4 for step in STEPS}
    checks = {
        "the app lists our run": EXPERIMENT in report["runs_listed"],
        "every line loads (no error lines)": any("error: 0." in t for t in report["toasts"]),
        "steps 1-5 once each, in order": report["steps_loaded"] == STEPS
        and {int(step): n for step, n in report["samples_per_step"].items()} == expected,
        "reward table in step order": report["reward_table_steps"] == STEPS,
        "every step curve in step order": bool(report["curves"]) and all(x == STEPS for x in report["curves"].values()),
        "every sample page shown without an error": report["sample_pages_shown"] == 20 and not report["problems"],
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
