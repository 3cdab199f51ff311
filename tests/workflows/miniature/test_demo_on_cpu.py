"""Acceptance test of the main job at reduced scale: the paper's findings, asserted on the real pipeline.

One run of every stage (base training, GRPO through verl, shift, cross-sample, report), then a
rerun that must skip them all. Reduced: fewer responses analysed and two eps values; the base model
and GRPO are the main job's, since a shorter run did not learn clearly (DemoSettings.reduced). Two
runs of the main job measured 0.748 -> 0.953 and 0.735 -> 0.963 (20 steps); the thresholds keep
about half of each finding as margin. About 8 minutes on 2 cores.
"""

from __future__ import annotations

import json
import time

import pytest

from sparse_rlvr.workflows.miniature.pipeline import DemoSettings, Display, Pipeline

pytestmark = pytest.mark.slow

RESULT_KEYS = {"base_accuracy", "rl_accuracy", "steps", "wall_s", "shift", "cross_sampling"}
SHIFT_KEYS = {"frac_js_below_1e-3", "frac_js_above_0.1", "js_mean_by_position_decile",
              "high_js_policy_top1_in_base_top3", "planted_fork_recall_top5pct"}
CROSS_KEYS = {"eps", "swapped_frac", "accuracy", "random_control_accuracy"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")  # as a user's run: W&B offline, uploadable with `wandb sync`
        results = Pipeline(out, DemoSettings.reduced(), Display(None)).run()
    return out, results


def test_results_json_has_the_documented_keys(run):
    out, results = run
    on_disk = json.loads((out / "results.json").read_text())
    assert RESULT_KEYS <= set(on_disk) and SHIFT_KEYS <= set(on_disk["shift"])
    assert len(on_disk["shift"]["js_mean_by_position_decile"]) == 10
    for direction in ("forward", "reverse"):
        assert on_disk["cross_sampling"][direction] and all(CROSS_KEYS <= set(r) for r in on_disk["cross_sampling"][direction])


def test_grpo_ran_through_verl_with_the_monitor_wandb_and_checkpoints(run):
    out, results = run
    assert list(out.glob("wandb/offline-run-*/run-*.wandb"))
    board = (out / "grpo" / "logging_board" / "grpo_miniature" / "rollout_data_rank_0.jsonl").read_text().splitlines()
    assert {json.loads(line)["step"] for line in board} == set(range(1, results["steps"] + 1))
    steps = sorted(int(p.parent.parent.name.split("_")[-1]) for p in out.glob("grpo/*/global_step_*/actor/huggingface"))
    every = DemoSettings.reduced().save_freq
    assert steps == list(range(every, results["steps"] + 1, every))
    assert [step for step, _ in results["accuracy_curve"]] == [0, *steps]


def test_rl_beats_the_base_by_a_clear_margin(run):
    _, results = run
    assert results["rl_accuracy"] >= results["base_accuracy"] + 0.1, results


def test_most_tokens_barely_move_and_the_planted_forks_are_found(run):
    _, results = run
    shift = results["shift"]
    assert shift["frac_js_below_1e-3"] >= 0.7, shift
    assert shift["planted_fork_recall_top5pct"] >= 0.5, shift
    assert shift["js_mean_at_forks"] > 10 * shift["js_mean_elsewhere"], shift


def _at(rows: list[dict], eps: float) -> dict:
    return next(r for r in rows if r["eps"] == eps)


def test_forward_cross_sampling_recovers_the_gain_and_beats_its_control(run):
    _, results = run
    base, rl = results["base_accuracy"], results["rl_accuracy"]
    row = _at(results["cross_sampling"]["forward"], 0.01)
    assert row["swapped_frac"] < 0.15, row
    assert row["accuracy"] >= base + 0.7 * (rl - base), (row, base, rl)
    assert row["accuracy"] >= row["random_control_accuracy"] + 0.05, row


def test_reverse_cross_sampling_removes_the_gain_and_beats_its_control(run):
    _, results = run
    base, rl = results["base_accuracy"], results["rl_accuracy"]
    row = _at(results["cross_sampling"]["reverse"], 0.01)
    assert row["accuracy"] <= rl - 0.5 * (rl - base), (row, base, rl)
    assert row["accuracy"] <= row["random_control_accuracy"] - 0.05, row


def test_report_tells_the_story_without_model_text_as_markup(run):
    out, _ = run
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 5 and "planted fork" in page
    assert '<script type="application/json" id="tokens">' in page  # model text travels as inert JSON only
    assert "\\boxed" not in page.split('id="tokens">')[0]  # no response text before the JSON block


def test_a_rerun_skips_every_finished_stage(run):
    out, results = run
    start = time.perf_counter()
    again = Pipeline(out, DemoSettings.reduced(), Display(None)).run()
    assert time.perf_counter() - start < 60  # no stage reran: only the report is rebuilt
    assert again["shift"] == results["shift"] and again["cross_sampling"] == results["cross_sampling"]


def test_a_rerun_with_other_settings_is_refused(run):
    out, _ = run
    from sparse_rlvr.core.errors import UserError

    with pytest.raises(UserError, match="other settings"):
        Pipeline(out, DemoSettings(), Display(None))
