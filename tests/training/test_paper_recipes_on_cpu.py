"""The paper's GPU recipes (Qwen2.5-Math-7B, GRPO and DAPO) x the weighting presets: every key exists in verl 0.9.1."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from sparse_rlvr.training.verl_glue.launch import RECIPES_DIR, compose

PAPER_RECIPES = ["grpo_qwen2p5_math_7b", "dapo_qwen2p5_math_7b"]
PRESETS = {"plain": (0.0, 1.0), "high_boost": (1.0, 20.0), "low_boost": (1.0, -20.0)}
"""preset -> (scale, alpha); alpha 1.0 under plain is _sparse_rlvr_defaults' own (unused at s = 0)."""
OUR_FILES = ["_qwen2p5_math_7b_base.yaml", *(f"{r}.yaml" for r in PAPER_RECIPES)]
FREE_FORM = ("reward.reward_kwargs", "ray_kwargs.ray_init.runtime_env.env_vars", "actor_rollout_ref.model.override_config")
"""Sections verl reads as plain dicts (reward managers .get() reward_kwargs; Ray env; HF config overrides)."""


@pytest.fixture(scope="module")
def ppo_trainer() -> DictConfig:
    """verl 0.9.1's own ppo_trainer config, composed from the installed package."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return hydra_compose(config_name="ppo_trainer")


def has_key(config: DictConfig, dotted: str) -> bool:
    """Whether `config` has the key at all (set, null or ??? alike)."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():
            return False
        node = node._get_node(part)
    return True


def leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted paths of every scalar or list a YAML file sets."""
    if not isinstance(node, DictConfig):
        return [prefix]
    keys = []
    for key in node.keys():
        if prefix == "" and key in ("hydra", "defaults"):
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        keys += [path] if isinstance(node._get_node(key), ListConfig) else leaf_keys(node._get_node(key), path)
    return keys


@pytest.mark.parametrize("file", OUR_FILES)
def test_every_key_the_recipes_set_exists_in_verls_ppo_trainer(file, ppo_trainer):
    raw = OmegaConf.load(RECIPES_DIR / file)
    defaults = OmegaConf.load(RECIPES_DIR / "_sparse_rlvr_defaults.yaml")
    unknown = [
        key for key in leaf_keys(raw)
        if not key.startswith(FREE_FORM)
        and not has_key(defaults if key.startswith("sparse_rlvr.") else ppo_trainer, key)
    ]
    assert unknown == [], f"{file} sets keys verl 0.9.1's ppo_trainer does not have"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_weighting_presets_only_set_known_weighting_keys(preset):
    from sparse_rlvr.training.weighting import WeightingConfig

    text = (RECIPES_DIR / "weighting" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package sparse_rlvr.weighting")
    assert set(OmegaConf.load(RECIPES_DIR / "weighting" / f"{preset}.yaml")) <= set(WeightingConfig.__dataclass_fields__)


@pytest.mark.filterwarnings("ignore:Disabled critic")
@pytest.mark.parametrize("recipe", PAPER_RECIPES)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_recipe_with_each_preset_composes_and_passes_verls_checks(recipe, preset):
    from verl.trainer.ppo.utils import need_critic
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    from sparse_rlvr.training.config import PluginConfig

    config = compose(recipe, [f"weighting={preset}"])
    assert (RECIPES_DIR / f"{recipe}.yaml").read_text().startswith("# Run")
    weighting = PluginConfig.from_config(config.sparse_rlvr).weighting
    assert (weighting.scale, weighting.alpha, weighting.source, weighting.mask) == (*PRESETS[preset], "js", "none")
    # sparse_rlvr loads the reference (base) model in every run, so verl checks it as present
    validate_config(config=config, use_reference_policy=True, use_critic=need_critic(config))
    for section in ("actor_rollout_ref.actor", "actor_rollout_ref.rollout", "algorithm"):
        omega_conf_to_dataclass(OmegaConf.select(config, section))


def test_shared_setup(monkeypatch):
    monkeypatch.setenv("SPARSE_RLVR_DATA_DIR", "/data/x")
    for recipe in PAPER_RECIPES:
        config = compose(recipe, [])
        OmegaConf.resolve(config)
        assert config.data.train_files == "/data/x/dapo_math_17k.parquet"
        assert list(config.data.val_files) == [f"/data/x/{n}.parquet" for n in ("aime24", "aime25", "amc23", "math500")]
        assert (config.data.max_prompt_length, config.data.max_response_length, config.data.train_batch_size) == (2048, 8192, 512)
        model, actor, rollout = config.actor_rollout_ref.model, config.actor_rollout_ref.actor, config.actor_rollout_ref.rollout
        assert model.path == "Qwen/Qwen2.5-Math-7B" and model.override_config.max_position_embeddings == 32768
        assert actor.strategy == config.actor_rollout_ref.ref.strategy == "fsdp2"
        assert (actor.optim.lr, actor.optim.weight_decay, actor.ppo_mini_batch_size) == (1e-6, 0.1, 32)
        assert (rollout.name, rollout.n, rollout.max_model_len) == ("vllm", 16, 2048 + 8192)
        assert dict(rollout.val_kwargs) | {} == {"_target_": "verl.workers.config.SamplingConfig", "n": 32, "temperature": 1.0,
                                                 "top_p": 0.7, "top_k": -1, "do_sample": True}
        assert config.algorithm.adv_estimator == "divergence_weighted"
        assert config.reward.reward_manager.name == "sparse_rlvr_math"
        assert config.sparse_rlvr.enable and config.sparse_rlvr.weighting.scale == 0.0, "weighting=plain by default"
        assert config.trainer.experiment_name == recipe
        assert config.ray_kwargs.ray_init.runtime_env.env_vars.VLLM_ALLOW_LONG_MAX_MODEL_LEN == "1"


def test_dapo_settings():
    config = compose("dapo_qwen2p5_math_7b", [])
    actor = config.actor_rollout_ref.actor
    assert (actor.use_kl_loss, actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (False, 0.2, 0.28, 10.0)
    assert actor.loss_agg_mode == "token-mean" and not config.algorithm.use_kl_in_reward
    assert dict(config.algorithm.filter_groups) | {} == {"_target_": "verl.trainer.config.FilterGroupsConfig", "enable": True,
                                                          "metric": "acc", "max_num_gen_batches": 0, "max_inflight_gen_batches": 3}
    kwargs = OmegaConf.to_container(config.reward.reward_kwargs, resolve=True)
    assert kwargs == {"max_resp_len": 8192, "overlong_buffer_cfg": {"enable": True, "len": 4096, "penalty_factor": 1.0, "log": False}}


def test_grpo_settings():
    from verl.trainer.ppo.utils import need_reference_policy

    config = compose("grpo_qwen2p5_math_7b", [])
    actor = config.actor_rollout_ref.actor
    assert (actor.use_kl_loss, actor.kl_loss_coef, actor.kl_loss_type) == (True, 0.001, "low_var_kl")
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.2, 3.0)
    assert not config.algorithm.filter_groups.enable and "reward_kwargs" not in config.reward
    assert need_reference_policy(config)


def test_overrides_work_as_in_verl():
    config = compose("dapo_qwen2p5_math_7b", ["weighting=low_boost", "sparse_rlvr.weighting.source=kl_ref",
                                              "actor_rollout_ref.model.path=/models/q", "trainer.nnodes=8"])
    assert (config.sparse_rlvr.weighting.alpha, config.sparse_rlvr.weighting.source) == (-20.0, "kl_ref")
    assert config.actor_rollout_ref.model.path == "/models/q" and config.trainer.nnodes == 8
