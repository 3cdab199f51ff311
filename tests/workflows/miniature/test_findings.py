"""The miniature's scoring against the planted forks, and its resumable stages, on hand-made inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sparse_rlvr.core.errors import UserError
from sparse_rlvr.workflows.miniature import findings
from sparse_rlvr.workflows.miniature.stages import StageDir


def _rows(kinds_and_forks):
    return [{"extra_info": {"kind": kind, "fork_positions": forks}} for kind, forks in kinds_and_forks]


def _tokens(js_by_sample: dict[int, list[float]]) -> pd.DataFrame:
    records = [{"sample_id": sid, "position": pos, "js": js}
               for sid, values in js_by_sample.items() for pos, js in enumerate(values)]
    return pd.DataFrame(records)


def test_sample_ids_follow_shifts_row_times_generate_numbering():
    samples = findings.sample_kinds(_rows([("fork_first", [0]), ("plain", [])]), generate=3)
    assert samples["sample_id"].tolist() == [0, 1, 2, 3, 4, 5]
    assert samples["kind"].tolist() == ["fork_first"] * 3 + ["plain"] * 3
    assert samples["forks"].tolist()[:3] == [[0]] * 3


def test_recall_counts_forks_among_the_top_five_percent_by_js():
    # 2 responses x 20 tokens = 40 positions; top 5% = 2 positions
    samples = findings.sample_kinds(_rows([("fork_first", [0]), ("fork_later", [6])]), generate=1)
    js = {0: [0.5] + [0.0] * 19, 1: [0.0] * 20}
    js[1][6] = 0.01   # the second fork: second highest, so in the top 2
    js[1][10] = 0.001
    scores = findings.planted_forks(_tokens(js), samples)
    assert scores["planted_fork_recall_top5pct"] == 1.0
    assert scores["js_share_at_forks"] == pytest.approx(0.51 / 0.511)
    js[1][10] = 0.2   # now a non-fork position outranks the second fork
    scores = findings.planted_forks(_tokens(js), samples)
    assert scores["planted_fork_recall_top5pct"] == 0.5
    assert scores["js_mean_elsewhere"] == pytest.approx(0.2 / 38)


def test_recall_refuses_data_without_planted_forks():
    samples = findings.sample_kinds(_rows([("plain", [])]), generate=1)
    with pytest.raises(ValueError, match="no planted fork"):
        findings.planted_forks(_tokens({0: [0.1, 0.2]}), samples)


def test_js_by_position_is_split_by_prompt_kind():
    samples = findings.sample_kinds(_rows([("fork_first", [0]), ("plain", [])]), generate=1)
    by_kind = findings.js_by_position_and_kind(_tokens({0: [0.4, 0.0], 1: [0.0, 0.1, 0.2]}), samples)
    assert by_kind == {"fork_first": [0.4, 0.0], "plain": [0.0, 0.1, 0.2]}


def test_cross_sampling_rows_pair_each_eps_with_its_random_control():
    table = [
        {"setting": "primary-only", "rule": "never", "value": None, "accuracy": 60.0, "effective_pct_tokens": 0.0},
        {"setting": "intervening-only", "rule": "js-threshold", "value": 0.0, "accuracy": 95.0, "effective_pct_tokens": 100.0},
        {"setting": "js-0.1", "rule": "js-threshold", "value": 0.1, "accuracy": 90.0, "effective_pct_tokens": 4.0},
        {"setting": "random@js-0.1", "rule": "random", "value": None, "accuracy": 62.0, "effective_pct_tokens": 4.0},
        {"setting": "js-0.01", "rule": "js-threshold", "value": 0.01, "accuracy": 94.0, "effective_pct_tokens": 6.0},
        {"setting": "random@js-0.01", "rule": "random", "value": None, "accuracy": 63.0, "effective_pct_tokens": 6.0},
    ]
    out = findings.cross_sampling_findings(table)
    assert [r["eps"] for r in out["settings"]] == [0.01, 0.1]
    assert out["settings"][0] == pytest.approx({"eps": 0.01, "swapped_frac": 0.06, "accuracy": 0.94,
                                                "random_control_accuracy": 0.63, "random_control_swapped_frac": 0.06})
    assert (out["primary_only_accuracy"], out["intervening_only_accuracy"]) == (0.6, 0.95)


def test_accuracy_curve_and_steps_to_target_read_verls_validation_records():
    key = findings.ACCURACY_METRIC.format(n=2)
    records = [{"step": 0, "data": {key: 0.6}}, {"step": 1, "data": {"critic/score/mean": 0.1}},
               {"step": 5, "data": {key: 0.8, "critic/score/mean": 0.5}}, {"step": 10, "data": {key: 0.92}}]
    curve = findings.accuracy_curve(records, val_n=2)
    assert curve == [[0, 0.6], [5, 0.8], [10, 0.92]]
    assert findings.steps_to_target(curve, 0.9) == 10 and findings.steps_to_target(curve, 0.95) is None


def test_finished_stages_are_skipped_and_other_settings_refused(tmp_path):
    calls = []
    stages = StageDir(tmp_path, {"steps": 3})
    result, ran = stages.run("base", lambda: calls.append(1) or {"loss": 0.5})
    assert ran and result["loss"] == 0.5 and "wall_s" in result
    again, ran = StageDir(tmp_path, {"steps": 3}).run("base", lambda: calls.append(2) or {"loss": 9.0})
    assert not ran and again == result and calls == [1]
    assert json.loads((tmp_path / "stages" / "base.json").read_text()) == result
    with pytest.raises(UserError, match=r"other settings \(steps\)"):
        StageDir(tmp_path, {"steps": 4})


def test_a_failed_stage_leaves_no_marker_and_reruns(tmp_path):
    stages = StageDir(tmp_path, {})

    def fail():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        stages.run("grpo", fail)
    assert stages.done("grpo") is None
    assert stages.run("grpo", lambda: {"ok": True})[1]


FAKE_TRAINER = """
import json, os, sys
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
name, project = args["trainer.experiment_name"], args["trainer.project_name"]
scale = float(args.get("sparse_rlvr.weighting.scale", 0))
path = os.path.join(os.environ["VERL_FILE_LOGGER_ROOT"], project, name + ".jsonl")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    for step, acc in ((0, 0.7), (5, 0.8 + 0.05 * scale), (10, 0.9)):
        f.write(json.dumps({"step": step, "data": {"val-core/sparse_rlvr/miniature_mod10/acc/mean@1": acc}}) + "\\n")
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "tiny": os.environ["SPARSE_RLVR_TINY_DIR"]}) + "\\n")
print("verl says hello from", name)
"""


def test_the_ablation_runs_every_setting_and_seed_through_the_sweep_runner(tmp_path, monkeypatch):
    import sys

    from sparse_rlvr.workflows.miniature.pipeline import ABLATION_SETTINGS, DemoSettings, Display, Pipeline

    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    pipeline = Pipeline(tmp_path / "out", DemoSettings(ablation_seeds=(1, 2), ablation_target=0.85), Display(None),
                        train_command=[sys.executable, str(script)])
    table = pipeline.ablation_stage()["settings"]
    assert list(table) == list(ABLATION_SETTINGS)
    assert all(row["seeds"] == [1, 2] and row["final_accuracy"] == [0.9, 0.9] for row in table.values())
    assert table["plain GRPO"]["steps_to_target"] == [10, 10] and table["high-JS boost"]["steps_to_target"] == [5, 5]
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 10 and {c["tiny"] for c in calls} == {str(pipeline.base_dir)}
    argv = calls[0]["argv"]
    assert "grpo_miniature_cpu" in argv and "actor_rollout_ref.actor.optim.lr=0.0003" in argv and "trainer.save_freq=-1" in argv
    assert "trainer.total_training_steps=10" in argv  # ablation_steps, not the main run's grpo_steps
    assert any(a.startswith("data.seed=") for a in argv)  # the sweep's seed, not the main run's
    assert pipeline.ablation_stage()["settings"] == table  # a rerun skips the finished runs and reads the same curves
    assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 10
    logs = sorted((pipeline.out / "ablation" / "logs").glob("*.log"))  # verl's output, not the demo's console
    assert len(logs) == 10 and "verl says hello from" in logs[0].read_text()
