"""The vLLM CPU lane's set-up and configuration, without starting vLLM (the end-to-end runs: test_vllm_lane_on_cpu)."""

from __future__ import annotations

import importlib.metadata
import itertools

import pytest

from sparse_rlvr.training.verl_glue import vllm_cpu_lane
from sparse_rlvr.training.verl_glue.launch import check_cpu_config, compose
from sparse_rlvr.training.verl_glue.request_seeds import RequestSeeds
from sparse_rlvr.training.verl_glue.vllm_cpu_lane import (
    CPU_KV_CACHE_BYTES,
    WORKER_EXTENSION,
    apply_cpu_vllm_settings,
    vllm_cpu_missing,
)

LANE = vllm_cpu_missing()
needs_lane = pytest.mark.skipif(LANE is not None, reason=f"no vLLM CPU lane: {LANE}")


def _vllm_config(*overrides: str):
    return compose("grpo_tiny_cpu", ["actor_rollout_ref.rollout.name=vllm", *overrides])


def test_cpu_settings_are_applied_once_and_keep_the_users_extension():
    config = _vllm_config()
    changes = apply_cpu_vllm_settings(config)
    rollout = config.actor_rollout_ref.rollout
    assert rollout.engine_kwargs.vllm.worker_extension_cls == WORKER_EXTENSION
    assert (rollout.enable_sleep_mode, rollout.enforce_eager, rollout.enable_chunked_prefill) == (False, True, False)
    assert rollout.engine_kwargs.vllm.kv_cache_memory_bytes == CPU_KV_CACHE_BYTES
    assert len(changes) == 5
    assert apply_cpu_vllm_settings(config) == []  # nothing left to change
    own = _vllm_config("+actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls=my.Ext",
                       "+actor_rollout_ref.rollout.engine_kwargs.vllm.kv_cache_memory_bytes=1073741824")
    apply_cpu_vllm_settings(own)
    assert own.actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls == "my.Ext"
    assert own.actor_rollout_ref.rollout.engine_kwargs.vllm.kv_cache_memory_bytes == 1 << 30  # the user's size


def test_worker_extension_path_names_the_class():
    module, _, name = WORKER_EXTENSION.rpartition(".")
    assert module == "sparse_rlvr.training.verl_glue.vllm_cpu_worker" and name == "CPUColocateWorkerExtension"
    source = importlib.util.find_spec(module).origin
    assert f"class {name}(" in open(source).read()


@needs_lane
def test_vllm_on_cpu_passes_the_cpu_check_with_the_lane():
    check_cpu_config(_vllm_config())


def test_vllm_on_cpu_without_the_lane_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(vllm_cpu_lane, "vllm_cpu_missing", lambda: "vllm-cpu is not installed: " + vllm_cpu_lane.INSTALL_HINT)
    with pytest.raises(ValueError, match=r"rollout.name=vllm on CPU: vllm-cpu is not installed.*setup.sh vllm-cpu"):
        check_cpu_config(_vllm_config())


@needs_lane
def test_the_vllm_alias_matches_vllm_cpu():
    """verl reads importlib.metadata.version('vllm'): the alias answers with vllm-cpu's version, marked +cpu."""
    assert importlib.metadata.version("vllm") == importlib.metadata.version("vllm-cpu") + "+cpu"
    files = importlib.metadata.distribution("vllm").files
    assert all(".dist-info/" in str(f) for f in files), "the alias must own no file of the vllm package"


@needs_lane
def test_the_lane_has_no_cuda_side_packages():
    """CUDA builds of torchvision/torchaudio/torchcodec break `import vllm` and transformers' Qwen2 on CPU."""
    present = []
    for name in ("torchvision", "torchaudio", "torchcodec", "triton"):
        try:
            importlib.metadata.version(name)
            present.append(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    assert present == [], f"{present}: bash scripts/setup.sh removes them after installing the lane"


def test_request_seeds_depend_on_what_a_request_is_not_when_it_came():
    prompts = [[1, 2, 3], [4, 5], [1, 2, 3], [1, 2, 3], [4, 5]]
    first = RequestSeeds(7)
    seeds = [first.next(1, p) for p in prompts]
    assert len({seeds[0], seeds[2], seeds[3]}) == 3  # the k-th request of a prompt differs from the others
    for order in itertools.permutations(range(len(prompts))):
        other = RequestSeeds(7)
        got = {}
        for i in order:
            got.setdefault(tuple(prompts[i]), []).append(other.next(1, prompts[i]))
        assert sorted(got[(1, 2, 3)]) == sorted([seeds[0], seeds[2], seeds[3]]) and sorted(got[(4, 5)]) == sorted([seeds[1], seeds[4]])
    assert RequestSeeds(7).next(2, prompts[0]) != seeds[0]  # a new weight version samples anew
    assert RequestSeeds(8).next(1, prompts[0]) != seeds[0]  # and so does another run seed
    assert 0 <= seeds[0] < 2**63


@needs_lane
def test_verl_and_vllm_internals_of_the_lane_are_still_there():
    from sparse_rlvr.training.verl_glue.verl_internals import VLLM_LANE_INTERNALS, missing_internals

    assert len(VLLM_LANE_INTERNALS) == 4
    assert missing_internals(VLLM_LANE_INTERNALS) == []
