"""The `sparse_rlvr` run section, the train entry point's arguments, recipes and the forward counter."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from sparse_rlvr.workflows.tiny_models import tiny_model
from sparse_rlvr.training.verl_glue import benchmark_forward_counter as forward_count
from sparse_rlvr.training.verl_glue.launch import DEFAULT_CONFIG, compose, pass_plugin_env
from sparse_rlvr.training.config import WEIGHTING_ENV, MonitorConfig, PluginConfig
from sparse_rlvr.training.weighting import WeightingConfig


def test_defaults_file_matches_the_dataclasses():
    config = compose(DEFAULT_CONFIG, [])
    plugin = PluginConfig.from_config(config.sparse_rlvr)
    assert plugin == PluginConfig()
    assert config.algorithm.adv_estimator == "gae"  # verl's ppo_trainer default is untouched


def test_overrides_reach_the_section_and_the_worker_environment(monkeypatch):
    monkeypatch.setenv(WEIGHTING_ENV, "")  # recorded, so monkeypatch removes what pass_plugin_env sets
    config = compose("grpo_tiny_cpu", ["sparse_rlvr.weighting.scale=0.5", "sparse_rlvr.weighting.alpha=-20",
                                       "sparse_rlvr.monitor.logging_board_dir=/tmp/board"])
    plugin = pass_plugin_env(config)
    assert plugin.weighting == WeightingConfig(scale=0.5, alpha=-20.0)
    assert plugin.monitor.logging_board_dir == "/tmp/board"
    sent = json.loads(config.ray_kwargs.ray_init.runtime_env.env_vars[WEIGHTING_ENV])
    assert sent["scale"] == 0.5 and sent["alpha"] == -20.0
    import os

    assert json.loads(os.environ[WEIGHTING_ENV]) == sent  # the driver's estimator reads it too
    assert config.ray_kwargs.ray_init.runtime_env.env_vars.SPARSE_RLVR_DEVICE == "cpu"  # recipe's vars kept


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"enabel": True}, "unknown sparse_rlvr option"),
        ({"weighting": {"scale": 3}}, "sparse_rlvr.weighting.scale must be in [0, 2]"),
        ({"weighting": {"source": "kl"}}, "sparse_rlvr.weighting.source must be one of"),
        ({"weighting": {"slope": 1}}, "unknown sparse_rlvr.weighting option"),
        ({"monitor": {"histogram_bins": 1000}}, "W&B's limit"),
        ({"monitor": {"heatmap_freq": -1}}, "0 = never"),
        ({"monitor": {"chunk": 4}}, "unknown sparse_rlvr.monitor option"),
    ],
)
def test_bad_options_name_the_key(section, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PluginConfig.from_config(OmegaConf.create(section))


def test_weighting_without_its_estimator_is_refused():
    from sparse_rlvr.training.config import check_run_config as _check_estimator

    config = compose("grpo_tiny_cpu", ["algorithm.adv_estimator=grpo"])
    with pytest.raises(ValueError, match="nothing reads it"):
        _check_estimator(config, PluginConfig.from_config(config.sparse_rlvr))
    config = compose("grpo_tiny_cpu", ["sparse_rlvr.enable=false"])
    with pytest.raises(ValueError, match="set sparse_rlvr.enable=true"):
        _check_estimator(config, PluginConfig.from_config(config.sparse_rlvr))
    plain = compose("grpo_tiny_cpu", ["algorithm.adv_estimator=grpo", "sparse_rlvr.weighting.scale=0"])
    _check_estimator(plain, PluginConfig.from_config(plain.sparse_rlvr))  # nothing to refuse


def test_lora_reference_follows_verls_rule():
    from sparse_rlvr.training.verl_glue.actor_worker import reference_is_adapterless_actor

    assert not reference_is_adapterless_actor(compose("grpo_tiny_cpu", []).actor_rollout_ref.model)
    assert reference_is_adapterless_actor(compose("grpo_tiny_cpu", ["actor_rollout_ref.model.lora_rank=8"]).actor_rollout_ref.model)
    assert reference_is_adapterless_actor(compose("grpo_tiny_cpu", ["actor_rollout_ref.model.lora.rank=8"]).actor_rollout_ref.model)


def test_train_entry_point_parses_config_name(monkeypatch):
    from sparse_rlvr import train as entry

    calls = []
    monkeypatch.setattr(entry, "train", lambda name, overrides: calls.append((name, overrides)))
    entry.main(["--config-name", "dapo_tiny_cpu", "trainer.total_training_steps=2"])
    entry.main(["--config-name=grpo_tiny_cpu"])
    entry.main(["sparse_rlvr.enable=false"])
    assert calls == [("dapo_tiny_cpu", ["trainer.total_training_steps=2"]), ("grpo_tiny_cpu", []),
                     (DEFAULT_CONFIG, ["sparse_rlvr.enable=false"])]
    with pytest.raises(SystemExit, match="needs a recipe name"):
        entry.main(["--config-name"])


@pytest.mark.parametrize("bins", [1, 64, 512])
def test_histogram_bins_within_wandbs_limit_are_kept(bins):
    assert MonitorConfig(histogram_bins=bins).histogram_bins == bins


@pytest.mark.parametrize("bins", [0, 513])
def test_histogram_bins_beyond_wandbs_limit_are_refused(bins):
    with pytest.raises(ValueError, match=r"sparse_rlvr.monitor.histogram_bins must be in \[1, 512\]"):
        MonitorConfig(histogram_bins=bins)


def test_forward_counter_counts_causal_lm_forwards_by_grad_mode(tmp_path, monkeypatch):
    monkeypatch.setenv(forward_count.COUNT_ENV, str(tmp_path))
    monkeypatch.setattr(forward_count, "_INSTALLED", [])
    assert forward_count.install_forward_counter()
    try:
        model, skipped = tiny_model(0), tiny_model(1)
        setattr(skipped, forward_count.NOT_COUNTED, True)
        ids = torch.tensor([[3, 4, 5]])
        model(ids).logits.sum().backward()
        with torch.no_grad():
            model(ids)
            model(ids)
            skipped(ids)
        assert forward_count.read_forward_counts(tmp_path) == {"grad": 1, "no_grad": 2}
    finally:
        forward_count._INSTALLED[0].remove()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("actor_rollout_ref.model.use_fused_kernels=true", "fused kernels never build the logits"),
        ("algorithm.rollout_correction.bypass_mode=true", "skips the old-log-prob pass"),
        ("actor_rollout_ref.ref.strategy=megatron", "runs on verl's FSDP engines"),
    ],
)
def test_what_the_single_pass_cannot_do_is_refused_up_front(override, message):
    from sparse_rlvr.training.config import check_run_config

    config = compose("grpo_tiny_cpu", [override])
    with pytest.raises(ValueError, match=message):
        check_run_config(config, PluginConfig.from_config(config.sparse_rlvr))
    off = compose("grpo_tiny_cpu", [override, "sparse_rlvr.enable=false", "algorithm.adv_estimator=grpo", "sparse_rlvr.weighting.scale=0"])
    check_run_config(off, PluginConfig.from_config(off.sparse_rlvr))


def test_dapo_gets_reference_batching_for_the_plugins_reference():
    from sparse_rlvr.training.verl_glue.launch import _default_reference_batching

    config = compose("dapo_tiny_cpu", ["actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=null"])
    _default_reference_batching(config)
    assert config.actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu == config.actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu


LOSS_TIME = "actor_rollout_ref.actor.policy_loss.loss_mode=divergence_weighted"


@pytest.mark.parametrize("recipe", ["grpo_qwen2p5_math_7b", "dapo_qwen2p5_math_7b", "grpo_tiny_cpu"])
def test_loss_time_weighting_on_a_weighted_estimator_is_refused(recipe):
    """The recipes already set adv_estimator=divergence_weighted: adding the loss would weight twice."""
    from sparse_rlvr.training.config import check_run_config

    config = compose(recipe, [LOSS_TIME, "weighting=high_boost" if "7b" in recipe else "sparse_rlvr.weighting.scale=1"])
    with pytest.raises(ValueError, match="would both weight the same advantages \\(twice\\).*algorithm.adv_estimator=grpo"):
        check_run_config(config, PluginConfig.from_config(config.sparse_rlvr))
    alone = compose(recipe, [LOSS_TIME, "algorithm.adv_estimator=grpo", "sparse_rlvr.weighting.scale=1"])
    check_run_config(alone, PluginConfig.from_config(alone.sparse_rlvr))  # the loss-time variant by itself is fine


@pytest.mark.parametrize(
    ("override", "ignored"),
    [
        ("sparse_rlvr.weighting.mask=entropy", "mask=entropy"),
        ("sparse_rlvr.weighting.mask=divergence", "mask=divergence"),
        ("sparse_rlvr.weighting.source=kl_ref", "source=kl_ref"),
        ("sparse_rlvr.weighting.estimator=rloo", "estimator=rloo"),
    ],
)
def test_options_the_loss_time_variant_ignores_are_refused(override, ignored):
    from sparse_rlvr.training.config import check_run_config

    config = compose("grpo_tiny_cpu", [LOSS_TIME, "algorithm.adv_estimator=grpo", override])
    with pytest.raises(ValueError, match=f"ignores: sparse_rlvr.weighting.{ignored}"):
        check_run_config(config, PluginConfig.from_config(config.sparse_rlvr))
    estimator_time = compose("grpo_tiny_cpu", [override])  # the advantage-time variant reads them
    check_run_config(estimator_time, PluginConfig.from_config(estimator_time.sparse_rlvr))


def test_an_estimator_weighting_itself_is_refused():
    from sparse_rlvr.training.config import check_run_config

    config = compose("grpo_tiny_cpu", ["sparse_rlvr.weighting.estimator=divergence_weighted"])
    with pytest.raises(ValueError, match="would weight its own advantages"):
        check_run_config(config, PluginConfig.from_config(config.sparse_rlvr))


def test_workers_weighting_must_match_the_config(monkeypatch):
    """The loss-time variant reads the weighting from the environment its Ray workers share: it must be the config's."""
    from sparse_rlvr.training.config import check_worker_weighting, worker_weighting

    config = compose("grpo_tiny_cpu", [LOSS_TIME, "algorithm.adv_estimator=grpo", "sparse_rlvr.weighting.alpha=-20"])
    plugin = PluginConfig.from_config(config.sparse_rlvr)
    monkeypatch.delenv(WEIGHTING_ENV, raising=False)
    with pytest.raises(ValueError, match="launch with `sparse-rlvr train`"):
        check_worker_weighting(config, plugin)  # the workers would silently use the defaults
    monkeypatch.setenv(WEIGHTING_ENV, "")
    pass_plugin_env(config)
    assert worker_weighting() == plugin.weighting
    check_worker_weighting(config, plugin)


@pytest.mark.parametrize("config_class", ["WeightingConfig", "MonitorConfig", "PluginConfig", "ShiftConfig", "CrossSampleConfig"])
def test_every_config_field_documents_itself(config_class):
    """Help text lives on the field (dataclass metadata), where code and users can read it."""
    from dataclasses import fields

    from sparse_rlvr.analysis.config import ShiftConfig
    from sparse_rlvr.interventions.config import CrossSampleConfig
    from sparse_rlvr.training.config import MonitorConfig, PluginConfig
    from sparse_rlvr.training.weighting import WeightingConfig

    cls = locals()[config_class]
    undocumented = [f.name for f in fields(cls) if len(f.metadata.get("help", "").strip()) < 10]
    assert not undocumented, f"{config_class} fields without help: {undocumented}"

