"""sparse-rlvr ablate: the grid, its deduplication, run names, dry run, resume, bad values (a fake trainer)."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from sparse_rlvr.workflows.ablation import (
    AblationRun,
    Manifest,
    SweepFailed,
    ablation_grid,
    parse_list,
    run_overrides,
    run_sweep,
)

FAKE_TRAINER = """
import json, os, sys
name = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("trainer.experiment_name="))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "group": os.environ.get("WANDB_RUN_GROUP"), "tags": os.environ.get("WANDB_TAGS")}) + "\\n")
sys.exit(3 if name in os.environ.get("FAKE_FAIL", "").split(",") else 0)
"""


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    """A stand-in for `python -m sparse_rlvr.train`: logs its argv and W&B env, fails for names in FAKE_FAIL."""
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    return [sys.executable, str(script)]


def calls(tmp_path) -> list[dict]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def names(runs, prefix="dapo7b"):
    return [run.name(prefix) for run in runs]


def test_full_grid_is_deduplicated_where_settings_cannot_matter():
    runs = ablation_grid([0, 0.5, 1], [20, -20], ["js", "kl_ref"], ["none", "divergence", "entropy"], seeds=[1, 2])
    per_seed = [r for r in runs if r.seed == 1]
    # scale 0: none -> 1 baseline, divergence -> one per source (2), entropy -> 1; scale > 0: 2 x 2 x 2 x 3 = 24
    assert len(per_seed) == 1 + 2 + 1 + 24 and len(runs) == 2 * len(per_seed)
    assert len(set(runs)) == len(runs)
    assert runs[0] == AblationRun(scale=0.0, alpha=None, source=None, mask="none", rho=None, seed=1)
    assert [r.seed for r in runs] == [1] * 28 + [2] * 28, "seed-major: every setting of seed 1 first"


def test_names_are_the_settings_that_matter():
    runs = ablation_grid([0, 1], [20, -20], ["js"], ["none", "divergence"], seeds=[1])
    assert names(runs) == [
        "dapo7b-s0-none-seed1",
        "dapo7b-s0-js-divergence-rho0.2-seed1",
        "dapo7b-s1-a20-js-none-seed1",
        "dapo7b-s1-a20-js-divergence-rho0.2-seed1",
        "dapo7b-s1-a-20-js-none-seed1",
        "dapo7b-s1-a-20-js-divergence-rho0.2-seed1",
    ]
    assert names(ablation_grid([0.5], [20], ["kl_ref"], ["none"])) == ["dapo7b-s0.5-a20-kl_ref-none"]


def test_overrides_set_the_weighting_seeds_name_and_wandb_group():
    run = ablation_grid([1], [-20], ["js"], ["entropy"], rhos=[0.3], seeds=[7])[0]
    overrides = run_overrides(run, run.name("x"), "sweep1", ["trainer.total_training_steps=5"])
    assert overrides == [
        "trainer.total_training_steps=5",
        "algorithm.adv_estimator=divergence_weighted",
        "trainer.experiment_name=x-s1-a-20-js-entropy-rho0.3-seed7",
        '++ray_kwargs.ray_init.runtime_env.env_vars.WANDB_RUN_GROUP="sweep1"',
        '++ray_kwargs.ray_init.runtime_env.env_vars.WANDB_TAGS="sweep=sweep1,scale=1,alpha=-20,source=js,mask=entropy,rho=0.3,seed=7"',
        "sparse_rlvr.weighting.scale=1.0",
        "sparse_rlvr.weighting.alpha=-20.0",
        "sparse_rlvr.weighting.source=js",
        "sparse_rlvr.weighting.mask=entropy",
        "sparse_rlvr.weighting.rho=0.3",
        "data.seed=7",
        "actor_rollout_ref.actor.data_loader_seed=7",
        "actor_rollout_ref.rollout.seed=7",
    ]
    # a recipe that picks its own estimator (or the loss-time weighting) is left alone
    assert "algorithm.adv_estimator=divergence_weighted" not in run_overrides(
        run, "n", "s", ["actor_rollout_ref.actor.policy_loss.loss_mode=divergence_weighted"]
    )


def test_every_override_composes_into_a_real_recipe():
    """What the sweep passes is valid Hydra for a real recipe, and lands where sparse_rlvr reads it."""
    from sparse_rlvr.training.verl_glue.launch import compose
    from sparse_rlvr.training.config import PluginConfig

    run = ablation_grid([0.5], [-20], ["kl_ref"], ["divergence"], seeds=[3])[0]
    config = compose("dapo_qwen2p5_math_7b", run_overrides(run, run.name("d"), "2024", []))  # a numeric sweep name
    plugin = PluginConfig.from_config(config.sparse_rlvr)
    assert (plugin.weighting.scale, plugin.weighting.alpha, plugin.weighting.source, plugin.weighting.mask) == (0.5, -20.0, "kl_ref", "divergence")
    assert config.trainer.experiment_name == "d-s0.5-a-20-kl_ref-divergence-rho0.2-seed3"
    assert config.data.seed == 3 and config.actor_rollout_ref.rollout.seed == 3
    env = config.ray_kwargs.ray_init.runtime_env.env_vars
    assert all(isinstance(value, str) for value in env.values()), "Ray wants str env vars"
    assert env.WANDB_RUN_GROUP == "2024" and env.WANDB_TAGS.startswith("sweep=2024,scale=0.5,alpha=-20")
    assert env.VLLM_ALLOW_LONG_MAX_MODEL_LEN == "1", "the recipe's own env vars are kept"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scales": [3.0]}, "scale must be in \\[0, 2\\]"),
        ({"sources": ["kl"]}, "source must be one of js, kl_ref, kl_ref_reverse, got 'kl'"),
        ({"masks": ["top"]}, "mask must be one of none, divergence, entropy"),
        ({"rhos": [0.0]}, "rho must be in \\(0, 1\\]"),
        ({"alphas": []}, "--alpha needs at least one value"),
    ],
)
def test_bad_values_are_refused_with_the_reason(kwargs, message):
    grid = {"scales": [0, 1], "alphas": [20], "sources": ["js"], "masks": ["none"], **kwargs}
    with pytest.raises(ValueError, match=message):
        ablation_grid(**grid)


def test_list_parsing():
    assert parse_list("0, 0.5,1", "--scale") == [0.0, 0.5, 1.0]
    assert parse_list("20,-20", "--alpha") == [20.0, -20.0]
    with pytest.raises(ValueError, match="--scale: empty value in '0,,1'"):
        parse_list("0,,1", "--scale")
    with pytest.raises(ValueError, match="--seeds: '1,x' is not a comma-separated list of int"):
        parse_list("1,x", "--seeds", int)


def test_dry_run_prints_commands_and_launches_nothing(tmp_path, fake_trainer):
    runs = ablation_grid([0, 1], [20], ["js"], ["none"], seeds=[1])
    printed = []
    result = run_sweep("dapo_qwen2p5_math_7b", runs, sweep="sw", name_prefix="dapo7b", manifest_path=tmp_path / "m.json",
                       train_command=fake_trainer, dry_run=True, echo=printed.append)
    assert calls(tmp_path) == [] and not (tmp_path / "m.json").exists()
    assert result.planned == ["dapo7b-s0-none-seed1", "dapo7b-s1-a20-js-none-seed1"]
    text = "\n".join(printed)
    assert "[2/2] dapo7b-s1-a20-js-none-seed1" in text
    assert "WANDB_RUN_GROUP=sw WANDB_TAGS=sweep=sw,scale=1,alpha=20,source=js,mask=none,seed=1" in text
    assert "--config-name dapo_qwen2p5_math_7b" in text and "sparse_rlvr.weighting.alpha=20.0" in text


def test_runs_launch_in_order_with_wandb_grouping(tmp_path, fake_trainer):
    runs = ablation_grid([0, 1], [20, -20], ["js"], ["none"])
    result = run_sweep("recipe", runs, sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json",
                       extra_overrides=["trainer.total_training_steps=2"], train_command=fake_trainer, echo=lambda _: None)
    logged = calls(tmp_path)
    assert result.finished == ["p-s0-none", "p-s1-a20-js-none", "p-s1-a-20-js-none"] and not result.failed
    assert [c["argv"][:3] for c in logged] == [["--config-name", "recipe", "trainer.total_training_steps=2"]] * 3
    assert [c["group"] for c in logged] == ["sw"] * 3 and logged[2]["tags"] == "sweep=sw,scale=1,alpha=-20,source=js,mask=none"
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["config_name"] == "recipe" and manifest["extra_overrides"] == ["trainer.total_training_steps=2"]
    assert {name: run["status"] for name, run in manifest["runs"].items()} == dict.fromkeys(result.finished, "finished")
    assert manifest["runs"]["p-s0-none"]["returncode"] == 0


def test_an_interrupted_sweep_resumes_skipping_finished_runs(tmp_path, fake_trainer, monkeypatch):
    runs = ablation_grid([0, 1], [20, -20], ["js"], ["none"], seeds=[1])
    sweep = dict(sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json", train_command=fake_trainer, echo=lambda _: None)
    monkeypatch.setenv("FAKE_FAIL", "p-s1-a20-js-none-seed1")
    with pytest.raises(SweepFailed, match="p-s1-a20-js-none-seed1 exited 3; fix it and rerun"):
        run_sweep("recipe", runs, **sweep)
    manifest = json.loads((tmp_path / "m.json").read_text())["runs"]
    assert {n: r["status"] for n, r in manifest.items()} == {"p-s0-none-seed1": "finished", "p-s1-a20-js-none-seed1": "failed"}
    assert manifest["p-s1-a20-js-none-seed1"]["returncode"] == 3

    monkeypatch.delenv("FAKE_FAIL")
    (tmp_path / "calls.jsonl").unlink()
    result = run_sweep("recipe", runs, **sweep)
    assert result.skipped == ["p-s0-none-seed1"]
    assert result.finished == ["p-s1-a20-js-none-seed1", "p-s1-a-20-js-none-seed1"]
    launched = [next(a for a in c["argv"] if a.startswith("trainer.experiment_name=")) for c in calls(tmp_path)]
    assert launched == ["trainer.experiment_name=p-s1-a20-js-none-seed1", "trainer.experiment_name=p-s1-a-20-js-none-seed1"]

    dry = []
    run_sweep("recipe", runs, **{**sweep, "echo": dry.append}, dry_run=True)
    assert all("skipped" in line for line in dry)


def test_keep_going_runs_past_a_failure(tmp_path, fake_trainer, monkeypatch):
    runs = ablation_grid([0, 1], [20], ["js"], ["none"])
    monkeypatch.setenv("FAKE_FAIL", "p-s0-none")
    result = run_sweep("recipe", runs, sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json",
                       train_command=fake_trainer, keep_going=True, echo=lambda _: None)
    assert result.failed == ["p-s0-none"] and result.finished == ["p-s1-a20-js-none"]


def test_a_manifest_of_another_sweep_or_overrides_is_refused(tmp_path, fake_trainer):
    runs = ablation_grid([0], [20], ["js"], ["none"])
    run_sweep("recipe", runs, sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json", train_command=fake_trainer, echo=lambda _: None)
    with pytest.raises(ValueError, match="belongs to a sweep with"):
        run_sweep("recipe", runs, sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json",
                  extra_overrides=["trainer.total_training_steps=9"], train_command=fake_trainer, echo=lambda _: None)
    assert Manifest.load(tmp_path / "m.json", "sw", "recipe", []).status("p-s0-none") == "finished"


@pytest.mark.parametrize("override", ["sparse_rlvr.weighting.scale=1", "weighting=high_boost", "trainer.experiment_name=x", "+data.seed=4"])
def test_overrides_the_sweep_owns_are_refused(tmp_path, fake_trainer, override):
    runs = ablation_grid([0], [20], ["js"], ["none"], seeds=[1])
    with pytest.raises(ValueError, match="the sweep sets these itself"):
        run_sweep("recipe", runs, sweep="sw", name_prefix="p", manifest_path=tmp_path / "m.json",
                  extra_overrides=[override], train_command=fake_trainer, echo=lambda _: None)


def test_cli_dry_run_and_bad_values(tmp_path, monkeypatch):
    from sparse_rlvr.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["ablate", "--config-name", "dapo_qwen2p5_math_7b", "--name-prefix", "dapo7b", "--scale", "0,1",
                                 "--alpha", "-20", "--seeds", "1,2", "--dry-run", "trainer.total_training_steps=5"])
    assert result.exit_code == 0, result.output
    assert "sweep dapo7b-ablation: 4 runs of dapo_qwen2p5_math_7b" in result.output
    assert "[3/4] dapo7b-s0-none-seed2" in result.output and "dapo7b-s1-a-20-js-none-seed2" in result.output
    assert "trainer.total_training_steps=5" in result.output and not (tmp_path / "runs").exists()
    result = runner.invoke(app, ["ablate", "--config-name", "r", "--scale", "0,5", "--dry-run"])
    assert result.exit_code == 2 and "scale must be in [0, 2]" in result.output


LOSS_TIME = "actor_rollout_ref.actor.policy_loss.loss_mode=divergence_weighted"


def test_a_sweep_that_would_weight_twice_is_refused_before_any_run(tmp_path, monkeypatch):
    """The paper recipes set adv_estimator=divergence_weighted; the loss-time variant on top weights twice."""
    from sparse_rlvr.cli import app
    from sparse_rlvr.workflows.ablation import check_run_configs

    runs = ablation_grid([0, 1], [20], ["js"], ["none"])
    with pytest.raises(ValueError, match="dapo_qwen2p5_math_7b-s0-none: .*weight the same advantages \\(twice\\)"):
        check_run_configs("dapo_qwen2p5_math_7b", runs, [LOSS_TIME])
    check_run_configs("dapo_qwen2p5_math_7b", runs, [LOSS_TIME, "algorithm.adv_estimator=grpo"])  # loss-time alone
    masked = ablation_grid([1], [20], ["js"], ["entropy"])
    with pytest.raises(ValueError, match="ignores: sparse_rlvr.weighting.mask=entropy"):
        check_run_configs("dapo_qwen2p5_math_7b", masked, [LOSS_TIME, "algorithm.adv_estimator=grpo"])
    check_run_configs("dapo_qwen2p5_math_7b", masked, [])  # the estimator reads the mask

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ablate", "--config-name", "dapo_qwen2p5_math_7b", "--dry-run", LOSS_TIME])
    assert result.exit_code == 2 and "twice" in result.output and "[1/" not in result.output
