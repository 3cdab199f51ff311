"""The compiled divergence paths against the eager path and the float64 reference, and their fallbacks.

On CPU the compiled path is the hand-written kernel (cpu_kernel.cpp, built once per machine);
the torch.compile kernel (fused.py) is what CUDA runs and what CPU falls back to, so the
numerical tests run on both (the `cpu_path` fixture). Each (chunk rows, V, dtype, top_k)
compiles once per process under torch.compile (~10-30 s on 2 cores), so the tests share a few
shapes: chunk_size=32 pads every input here to 32 rows.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sparse_rlvr.core.divergence import cpu_kernel, fused, token_divergence
from tests.core.divergence.reference import reference_divergence
from tests.core.divergence.test_token_divergence import FLOAT_FIELDS, _pair, extreme_pair

REPO = Path(__file__).resolve().parents[3]
EXACT_FIELDS = ["base_top1", "policy_top1", "top1_agree", "policy_top1_rank_in_base"]


def _untied(logprobs: np.ndarray, k: int) -> np.ndarray:
    """[N] bool: rows whose k + 1 largest log-probs are all distinct (their top-k ids are unique)."""
    top = -np.sort(-logprobs, axis=1)[:, : k + 1]
    return (np.diff(top, axis=1) != 0).all(1)


def assert_close_to_reference(result, ref: dict[str, np.ndarray], atol: float) -> None:
    """Float fields within atol (relative 1e-6 for large values), ranks exact, top-k checked on untied rows."""
    for name in FLOAT_FIELDS:
        np.testing.assert_allclose(getattr(result, name).double().numpy(), ref[name], atol=atol, rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(result.policy_top1_rank_in_base.numpy(), ref["policy_top1_rank_in_base"])
    k = result.topk_overlap.shape[1]
    clean = _untied(ref["base_logprobs"], k) & _untied(ref["policy_logprobs"], k)
    np.testing.assert_allclose(result.topk_overlap.numpy()[clean], ref["topk_overlap"][clean], atol=1e-6)
    for who in ("base", "policy"):
        ids, logprobs = getattr(result, f"{who}_topk_ids")[:, :k], getattr(result, f"{who}_topk_logprobs")[:, :k]
        expected = ref[f"{who}_topk_logprobs"]
        np.testing.assert_array_equal(np.take_along_axis(ref[f"{who}_logprobs"], ids.numpy(), 1), expected)
        np.testing.assert_allclose(logprobs.double().numpy(), expected, atol=max(atol, 2e-6), rtol=1e-6)


def assert_same_as_eager(compiled, eager, atol: float) -> None:
    """Compiled and eager results agree: floats within atol, ranks and top-1 flags exactly."""
    for name in FLOAT_FIELDS:
        torch.testing.assert_close(getattr(compiled, name), getattr(eager, name), atol=atol, rtol=1e-5, msg=name)
    for name in ("policy_top1_rank_in_base", "top1_agree"):
        assert torch.equal(getattr(compiled, name), getattr(eager, name)), name
    for name in ("base_topk_logprobs", "policy_topk_logprobs"):
        torch.testing.assert_close(getattr(compiled, name), getattr(eager, name), atol=2e-6, rtol=1e-6, msg=name)
    assert compiled.topk_overlap.shape == eager.topk_overlap.shape


@pytest.fixture(params=["kernel", "inductor"])
def cpu_path(request, monkeypatch) -> str:
    """The compiled path on CPU: the hand-written kernel, or torch.compile's (the kernel switched off)."""
    if request.param == "kernel":
        monkeypatch.delenv(cpu_kernel.KERNEL_ENV, raising=False)
        assert cpu_kernel.row_sums_op() is not None, cpu_kernel._state.get("error")  # CI must build it
    else:
        monkeypatch.setenv(cpu_kernel.KERNEL_ENV, "0")
    return request.param


HALF_AND_FULL = [torch.float32, torch.bfloat16, torch.float16]
# V = 300 and 1031 end in a partial top-k block, V = 100 has none; one dtype for the odd widths
# keeps the number of compiles down
CASES = [(n, 300, dtype) for n in (40, 70) for dtype in HALF_AND_FULL] + [(33, 1031, torch.float32), (9, 100, torch.float32)]


@pytest.mark.parametrize("n,v,dtype", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_matches_eager_and_float64(n, v, dtype, seed, cpu_path):
    base, policy = _pair(n, v, seed=seed, dtype=dtype)
    compiled = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)
    eager = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=False)
    assert compiled.js.dtype == torch.float32 and compiled.topk_overlap.shape == (n, 5)
    # the reference sees exactly the (possibly half-precision) input values, upcast
    assert_close_to_reference(compiled, reference_divergence(base.float(), policy.float(), top_k=5), atol=1e-6)
    assert_same_as_eager(compiled, eager, atol=2e-6)


def test_compiled_at_full_vocabulary_is_within_1e6_of_float64(cpu_path):
    v = 151_936  # Qwen2.5's logits width
    base, policy = _pair(6, v, seed=3, dtype=torch.bfloat16)
    base[5], policy[5] = base[4], base[4]  # an identical pair of rows
    result = token_divergence(base, policy, chunk_size=32, compiled=True)
    ref = reference_divergence(base.float(), policy.float(), top_k=10)
    assert_close_to_reference(result, ref, atol=1e-6)
    assert result.js[5] == 0 and result.kl_base_policy[5] == 0 and result.kl_policy_base[5] == 0


def test_identical_rows_give_exactly_zero_when_compiled(cpu_path):
    base, _ = _pair(9, 300, seed=17)
    result = token_divergence(base, base.clone(), top_k=5, chunk_size=32, compiled=True)
    for name in ["js", "kl_base_policy", "kl_policy_base"]:
        assert torch.equal(getattr(result, name), torch.zeros(9)), name
    assert result.top1_agree.all() and (result.policy_top1_rank_in_base == 1).all()
    assert torch.equal(result.topk_overlap, torch.ones(9, 5))
    assert torch.equal(result.base_entropy, result.policy_entropy)


def test_huge_logit_gaps_stay_accurate_when_compiled(cpu_path):
    base, policy = extreme_pair(300)
    result = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)
    ref = reference_divergence(base, policy, top_k=5)
    assert_close_to_reference(result, ref, atol=1e-6)
    assert (result.js <= math.log(2)).all() and torch.isfinite(result.js).all()
    assert torch.equal(result.js[3::4], torch.zeros(6))  # rows left identical


def test_temperature_and_padded_vocabulary_when_compiled(cpu_path):
    base, policy = _pair(40, 300, seed=23)
    hot = token_divergence(base, policy, temperature=0.7, top_k=5, chunk_size=32, compiled=True)
    assert_close_to_reference(hot, reference_divergence(base, policy, temperature=0.7, top_k=5), atol=1e-6)
    padded_base = torch.cat([base, torch.full((40, 9), 50.0)], dim=1)
    padded_policy = torch.cat([policy, -50.0 * torch.ones(40, 9)], dim=1)
    padded = token_divergence(padded_base, padded_policy, vocab_size=300, top_k=5, chunk_size=32, compiled=True)
    plain = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)
    for name, value in plain.as_dict().items():
        torch.testing.assert_close(getattr(padded, name), value, msg=name)


def test_masked_rows_are_recomputed_on_the_eager_path(cpu_path):
    base, policy = _pair(40, 300, seed=7)
    base[0, :150] = -math.inf  # the base masks tokens the policy can emit
    policy[33, 10:270] = -math.inf  # in the second chunk, the other way round
    result = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)
    eager = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=False)
    assert_close_to_reference(result, reference_divergence(base, policy, top_k=5), atol=1e-6)
    assert math.isinf(result.kl_policy_base[0]) and math.isinf(result.kl_base_policy[33])
    for name, value in eager.as_dict().items():  # the chunks holding masked rows are eager's own
        assert torch.equal(getattr(result, name)[:1], value[:1]), name


def test_bad_rows_are_named_when_compiled(cpu_path):
    base, policy = _pair(40, 300)
    base[37, 3] = math.nan
    policy[39, 0] = math.inf  # a later bad row must not be the one reported
    with pytest.raises(ValueError, match="base_logits row 37 contains NaN"):
        token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)


def test_top_k_zero_as_training_calls_it(cpu_path):
    base, policy = _pair(40, 300, seed=41)
    compiled = token_divergence(base, policy, top_k=0, chunk_size=32, compiled=True)
    eager = token_divergence(base, policy, top_k=0, chunk_size=32, compiled=False)
    assert compiled.topk_overlap.shape == (40, 0) and compiled.base_topk_ids.shape == (40, 1)
    assert_same_as_eager(compiled, eager, atol=2e-6)


def test_environment_variable_chooses_the_path(monkeypatch):
    base, policy = _pair(40, 300, seed=43)
    monkeypatch.setenv(fused.COMPILE_ENV, "0")
    before = set(fused._compiled)
    token_divergence(base, policy, top_k=3, chunk_size=32)
    assert set(fused._compiled) == before  # nothing compiled
    monkeypatch.setenv(fused.COMPILE_ENV, "sometimes")
    with pytest.raises(ValueError, match="SPARSE_RLVR_DIVERGENCE_COMPILE='sometimes'"):
        token_divergence(base, policy, top_k=3, chunk_size=32)


def test_broken_compiler_falls_back_to_eager_with_one_warning_per_path(tmp_path):
    """A real failing compiler (CXX=false, empty kernel and inductor caches): same results as eager,
    one line saying the CPU kernel could not be built, one saying torch.compile failed."""
    script = (
        "import json, torch\n"
        "from sparse_rlvr.core.divergence import token_divergence\n"
        "from tests.core.divergence.test_token_divergence import _pair\n"
        "out = []\n"
        "for n, v in ((40, 300), (10, 77)):\n"
        "    b, p = _pair(n, v)\n"
        "    a, e = token_divergence(b, p, top_k=3), token_divergence(b, p, top_k=3, compiled=False)\n"
        "    out.append(all(torch.equal(getattr(a, f), getattr(e, f)) for f in a.as_dict()))\n"
        "print(json.dumps(out))\n"
    )
    env = os.environ | {
        fused.COMPILE_ENV: "1", "CXX": "false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "0", "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions"),
    }
    env.pop(cpu_kernel.KERNEL_ENV, None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True]
    lines = done.stderr.splitlines()
    kernel = [line for line in lines if "CPU kernel could not be built" in line]
    compiled = [line for line in lines if "torch.compile of the divergence kernel failed" in line]
    assert len(kernel) == 1 and len(compiled) == 1, done.stderr[-3000:]
    assert cpu_kernel.KERNEL_ENV in kernel[0] and "ninja" in kernel[0] and fused.COMPILE_ENV in compiled[0]


def test_cpu_chunks_go_to_the_hand_written_kernel_without_padding(monkeypatch):
    """On CPU the compiled path is the kernel: no torch.compile, and an odd row count is not padded."""
    monkeypatch.delenv(cpu_kernel.KERNEL_ENV, raising=False)
    monkeypatch.setattr(fused, "run_compiled", lambda *args: pytest.fail("torch.compile path used on CPU"))
    calls = []
    op = cpu_kernel.row_sums_op()
    monkeypatch.setattr(cpu_kernel, "row_sums_op", lambda: calls.append(1) or op)
    base, policy = _pair(37, 300, seed=61, dtype=torch.bfloat16)
    result = token_divergence(base, policy, top_k=5, chunk_size=16, compiled=True)
    eager = token_divergence(base, policy, top_k=5, chunk_size=16, compiled=False)
    assert_same_as_eager(result, eager, atol=2e-6)
    assert len(calls) == 1 + 3  # once to choose the path, once per chunk of 16, 16 and 5 rows


def test_the_kernel_gives_the_same_bits_on_one_thread_and_on_two():
    """Rows are split between threads, never a row's sums: the thread count cannot change a result."""
    base, policy = _pair(64, 1031, seed=67, dtype=torch.bfloat16)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = token_divergence(base, policy, top_k=5, compiled=True)
        torch.set_num_threads(2)
        two = token_divergence(base, policy, top_k=5, compiled=True)
    finally:
        torch.set_num_threads(threads)
    for name, value in one.as_dict().items():
        assert torch.equal(getattr(two, name), value), name


def test_core_imports_nothing_heavy():
    """The core must run on a machine with only torch (and numpy): no transformers, verl, ray, pandas."""
    script = (
        "import sys, sparse_rlvr.core.divergence, sparse_rlvr.core.divergence.fused\n"
        "print(sorted(m for m in ('transformers', 'verl', 'ray', 'pandas', 'vllm') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("compiled", [True, False])
def test_ties_take_the_lowest_token_id_first(compiled, cpu_path):
    """Equal logits: top-1 is argmax's (first) id and top-k lists ids in order, on both paths."""
    base, policy = _pair(40, 300, seed=47)
    base[:, [7, 100, 299]] = 20.0  # three-way tie for the base's top-1, across blocks and the tail
    policy[:, [250, 3]] = 30.0  # two-way tie for the policy's top-1
    result = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=compiled)
    assert (result.base_topk_ids[:, :3] == torch.tensor([7, 100, 299])).all()
    assert (result.policy_topk_ids[:, :2] == torch.tensor([3, 250])).all()
    assert torch.equal(result.policy_top1, policy.argmax(-1)) and torch.equal(result.base_top1, base.argmax(-1))
    ref = reference_divergence(base, policy, top_k=5)
    np.testing.assert_allclose(result.base_prob_of_policy_top1.double().numpy(), ref["base_prob_of_policy_top1"], atol=1e-6)
    np.testing.assert_array_equal(result.base_topk_ids.numpy(), ref["base_topk_ids"])


@pytest.mark.parametrize("compiled", [True, False])
def test_nearly_identical_rows_keep_jensen_shannon_accurate(compiled, cpu_path):
    """JS ~ 1e-9 (policy = base + 1e-4 noise) stays within 1e-11 of float64: no exp(x) - 1 style cancellation."""
    g = torch.Generator().manual_seed(53)
    base = 3 * torch.randn(20, 300, generator=g)
    policy = base + 1e-4 * torch.randn(20, 300, generator=g)
    result = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=compiled)
    ref = reference_divergence(base, policy, top_k=5)["js"]
    assert (ref > 1e-10).all() and (ref < 1e-7).all()
    np.testing.assert_allclose(result.js.double().numpy(), ref, atol=1e-11, rtol=2e-2)


def test_jensen_shannon_is_accurate_on_both_sides_of_the_series_switch(cpu_path):
    """|d| near fused.SERIES_BELOW, where u switches from its Taylor series to the log of the p/q ratio."""
    g = torch.Generator().manual_seed(59)
    base = 3 * torch.randn(40, 300, generator=g)
    width = torch.linspace(0.2, 1.5, 40)[:, None]  # rows from all-series to all-log
    policy = base + width * torch.randn(40, 300, generator=g).sign() * (1 + 0.1 * torch.rand(40, 300, generator=g))
    result = token_divergence(base, policy, top_k=5, chunk_size=32, compiled=True)
    ref = reference_divergence(base, policy, top_k=5)["js"]
    np.testing.assert_allclose(result.js.double().numpy(), ref, atol=2e-7, rtol=1e-5)


@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_the_kernel_builds_and_agrees_for_narrower_vector_units(capability):
    """Machines without AVX-512 (ATEN_CPU_CAPABILITY lowers torch's view of this one): the kernel is
    built for that ISA and agrees with eager on every dtype, with and without a partial last block."""
    script = (
        "import json, torch\n"
        "from sparse_rlvr.core.divergence import cpu_kernel, token_divergence\n"
        "from tests.core.divergence.test_compiled_on_cpu import assert_same_as_eager\n"
        "from tests.core.divergence.test_token_divergence import _pair\n"
        "assert cpu_kernel.row_sums_op() is not None, cpu_kernel._state\n"
        "for v in (300, 1024):\n"
        "    for dtype in (torch.float32, torch.bfloat16, torch.float16):\n"
        "        b, p = _pair(19, v, seed=71, dtype=dtype)\n"
        "        assert_same_as_eager(token_divergence(b, p, top_k=5, compiled=True),\n"
        "                             token_divergence(b, p, top_k=5, compiled=False), atol=2e-6)\n"
        "print(json.dumps(cpu_kernel.vector_isa()))\n"
    )
    env = os.environ | {"ATEN_CPU_CAPABILITY": capability}
    env.pop(cpu_kernel.KERNEL_ENV, None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == capability.upper()
