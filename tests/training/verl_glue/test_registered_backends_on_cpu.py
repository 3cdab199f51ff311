"""Registration: CPU only on request, loud failures, and the verl internals we rely on still exist."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest

from sparse_rlvr.training.verl_glue.launch import RECIPES_DIR, check_cpu_config, compose
from sparse_rlvr.training.verl_glue.vllm_cpu_lane import vllm_cpu_missing

PROBE = """
import json, verl
from sparse_rlvr.training.verl_glue.registered_backends import register_training_components
registered = register_training_components()
from verl.utils.device import get_device_name
from verl.workers.rollout.base import get_rollout_class
from verl.workers.rollout.replica import RolloutReplicaRegistry
from verl.workers.engine.base import EngineRegistry
print(json.dumps({"device": get_device_name(), "registered": registered,
  "adapter": get_rollout_class("hf").__name__, "replica": RolloutReplicaRegistry.get("hf").__name__,
  "vllm_replica": RolloutReplicaRegistry._registry["vllm"].__name__,
  "cpu_engine": EngineRegistry._engines["language_model"]["fsdp2"].get("cpu", type(None)).__name__}))
"""


def probe(**env: str) -> dict:
    import json

    environment = {k: v for k, v in os.environ.items() if k not in ("SPARSE_RLVR_DEVICE", "VERL_USE_EXTERNAL_MODULES")}
    out = subprocess.run([sys.executable, "-c", PROBE], env=environment | env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cpu_platform_only_when_asked():
    on_cpu = probe(SPARSE_RLVR_DEVICE="cpu")
    assert on_cpu["device"] == "cpu" and on_cpu["cpu_engine"] == "FSDPEngineWithLMHead"
    assert on_cpu["adapter"] == "HFServerAdapter" and on_cpu["replica"] == "HFReplica"
    default = probe()
    assert default["device"] != "cpu" and default["cpu_engine"] == "NoneType"
    assert default["adapter"] == "HFServerAdapter"  # the hf backend is device-agnostic
    # verl's own vLLM replica loader, except on CPU with the vLLM CPU lane installed
    assert default["vllm_replica"] == "_load_vllm"
    assert on_cpu["vllm_replica"] == ("_load_vllm" if vllm_cpu_missing() else "_load_seeded_vllm_replica")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("actor_rollout_ref.rollout.name=sglang", "rollout.name=sglang needs a GPU"),
        ("actor_rollout_ref.actor.strategy=fsdp", "only fsdp2 runs on CPU"),
        ("~ray_kwargs.ray_init.runtime_env.env_vars.SPARSE_RLVR_DEVICE", "SPARSE_RLVR_DEVICE must be 'cpu'"),
    ],
)
def test_gpu_only_options_on_cpu_are_rejected(override, message):
    config = compose("grpo_tiny_cpu", [override])
    with pytest.raises(ValueError, match=message):
        check_cpu_config(config)


RECIPES = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if not p.name.startswith("_"))
"""Recipes are the top-level files; sub-folders hold config groups (weighting presets), `_*` shared parts."""


def test_every_recipe_is_found():
    assert {"grpo_tiny_cpu", "dapo_tiny_cpu"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_compose_and_pass_the_cpu_check(recipe):
    config = compose(recipe, [])
    first_line = (RECIPES_DIR / f"{recipe}.yaml").read_text().splitlines()[0]
    assert first_line.startswith("# Run"), "every recipe starts with the command that runs it"
    if config.trainer.device == "cpu":
        check_cpu_config(config)
        assert config.actor_rollout_ref.rollout.name == "hf"
    elif recipe != "sparse_rlvr_trainer":  # verl's bare ppo_trainer leaves the rollout for the user to pick
        assert config.actor_rollout_ref.rollout.name in ("vllm", "sglang", "hf")


def test_wrong_verl_version_is_loud(monkeypatch):
    import verl

    from sparse_rlvr.training.verl_glue.registered_backends import check_verl_version

    monkeypatch.setattr(verl, "__version__", "0.10.0")
    with pytest.raises(RuntimeError, match="built against verl 0.9.1"):
        check_verl_version()


def test_missing_plugin_in_a_worker_is_loud(monkeypatch):
    from sparse_rlvr.training.verl_glue.hf_rollout import require_platform_loaded

    monkeypatch.setenv("SPARSE_RLVR_DEVICE", "cpu")
    monkeypatch.setattr("verl.utils.device.get_device_name", lambda: "cuda")
    with pytest.raises(RuntimeError, match="plugin was not loaded"):
        require_platform_loaded()


def test_verl_internals_we_reach_into_are_still_there():
    """Non-public verl 0.9.1 names used by sparse_rlvr.training; a move must fail here first.

    Every entry of `verl_internals.INTERNALS` is checked, each reported by name with what it breaks.
    """
    from sparse_rlvr.training.verl_glue.verl_internals import INTERNALS, missing_internals

    assert len(INTERNALS) >= 15
    assert missing_internals() == []
    import verl.utils.distributed as distributed
    import verl.workers.engine.fsdp.transformer_impl as transformer_impl
    import verl.workers.engine_workers as engine_workers
    from verl.plugin.platform import platform_manager
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.rollout import base, replica

    assert isinstance(base._ROLLOUT_REGISTRY, dict) and ("vllm", "async") in base._ROLLOUT_REGISTRY
    assert hasattr(replica.RolloutReplicaRegistry, "register") and inspect.isabstract(replica.RolloutReplica)
    assert set(replica.RolloutReplica.__abstractmethods__) == {"launch_servers"}
    assert set(base.BaseRollout.__abstractmethods__) == {"resume", "update_weights", "release"}
    assert isinstance(EngineRegistry._engines["language_model"]["fsdp2"], dict)
    assert hasattr(transformer_impl, "CPUOffloadPolicy") and hasattr(transformer_impl, "FSDPEngineWithValueHead")
    assert "backend" in inspect.signature(distributed.initialize_global_process_group_ray).parameters
    assert "initialize_global_process_group_ray(timeout_second=None)" in inspect.getsource(engine_workers)
    assert hasattr(platform_manager, "set_platform")
    from verl.workers.rollout.llm_server import LLMServerClient

    assert "server.generate.remote(" in inspect.getsource(LLMServerClient.generate)


PRIVATE_USES = (r"_ROLLOUT_REGISTRY\[", r"\._engines\b", r"_gather_and_unpad_packed\(", r"_autocast_dtype", r"TRAINER_REGISTRY",
                r"__ray_call__", r"__ray_actor_class__", r"\._server_handle\s*=", r"\._server_address", r"\.role_worker_mapping",
                r"initialize_global_process_group_ray", r"CPUOffloadPolicy", r"\w\.adv_estimator = ")
"""How code touches each verl internal of verl_internals.INTERNALS (attribute access, call or assignment)."""


def test_verl_internals_are_reached_only_through_verl_internals():
    from pathlib import Path

    import sparse_rlvr

    package = Path(sparse_rlvr.__file__).parent
    offenders = [
        f"{path.relative_to(package)}: {name}"
        for path in sorted(package.rglob("*.py")) if path.name != "verl_internals.py"
        for name in PRIVATE_USES if re.search(name, path.read_text())
    ]
    assert offenders == [], "reach verl internals through sparse_rlvr/training/verl_glue/verl_internals.py"


def test_trainer_overrides_only_the_listed_verl_hooks():
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from sparse_rlvr.training.verl_glue.trainer import TokenShiftTrainer
    from sparse_rlvr.training.verl_glue.verl_internals import TRAINER_HOOKS

    overridden = {name for name, value in vars(TokenShiftTrainer).items() if name.startswith("_") and callable(value)
                  and not name.startswith("__") and hasattr(PPOTrainerSync, name)}
    assert overridden == set(TRAINER_HOOKS)
