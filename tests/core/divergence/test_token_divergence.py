"""token_divergence against a float64 reference, scipy, properties, and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from sparse_rlvr.core.divergence import TokenDivergence, token_divergence
from tests.core.divergence.reference import reference_divergence

FLOAT_FIELDS = ["js", "kl_base_policy", "kl_policy_base", "base_entropy", "policy_entropy", "base_prob_of_policy_top1"]


def _pair(n: int, v: int, scale: float = 3.0, seed: int = 0, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Random base logits and a policy that moves some rows a lot and most rows a little."""
    g = torch.Generator().manual_seed(seed)
    base = scale * torch.randn(n, v, generator=g, dtype=torch.float64)
    noise = torch.randn(n, v, generator=g, dtype=torch.float64)
    strength = torch.where(torch.rand(n, 1, generator=g) < 0.3, 1.0, 1e-3)
    return base.to(dtype), (base + scale * strength * noise).to(dtype)


def assert_matches_reference(result: TokenDivergence, ref: dict[str, np.ndarray], atol: float = 2e-6, rtol: float = 1e-5) -> None:
    for name in FLOAT_FIELDS:
        np.testing.assert_allclose(getattr(result, name).double().numpy(), ref[name], atol=atol, rtol=rtol, err_msg=name)
    np.testing.assert_array_equal(result.policy_top1_rank_in_base.numpy(), ref["policy_top1_rank_in_base"])
    np.testing.assert_allclose(result.topk_overlap.numpy(), ref["topk_overlap"], atol=1e-6)
    k = result.topk_overlap.shape[1]
    for who in ("base", "policy"):
        # ids are checked through their reference log-probs: tied candidates may come in any order
        ids, logprobs = getattr(result, f"{who}_topk_ids")[:, :k], getattr(result, f"{who}_topk_logprobs")[:, :k]
        expected = ref[f"{who}_topk_logprobs"]
        np.testing.assert_array_equal(np.take_along_axis(ref[f"{who}_logprobs"], ids.numpy(), 1), expected)
        finite = np.isfinite(expected)
        np.testing.assert_allclose(logprobs.double().numpy()[finite], expected[finite], atol=1e-5, rtol=1e-5)

@pytest.mark.parametrize("n,v,chunk_size", [(1, 7, None), (33, 50, 4), (64, 1000, 7), (16, 5000, None)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_reference(n, v, chunk_size, seed):
    base, policy = _pair(n, v, seed=seed)
    top_k = min(5, v)
    result = token_divergence(base, policy, chunk_size=chunk_size, top_k=top_k)
    assert_matches_reference(result, reference_divergence(base, policy, top_k=top_k))


def test_js_matches_scipy_jensenshannon():
    base, policy = _pair(20, 300, seed=3)
    result = token_divergence(base, policy)
    p, q = torch.softmax(base.double(), -1).numpy(), torch.softmax(policy.double(), -1).numpy()
    # scipy returns the Jensen-Shannon *distance*, the square root of the divergence
    scipy_js = np.array([jensenshannon(p[i], q[i]) ** 2 for i in range(len(p))])
    np.testing.assert_allclose(result.js.double().numpy(), scipy_js, atol=2e-7, rtol=1e-5)


def extreme_pair(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[24, vocab] logits with huge gaps: half the rows with disjoint argmaxes (JS near ln 2), some rows nudged by 50."""
    g = torch.Generator().manual_seed(5)
    base = 1e4 * torch.randn(24, vocab, generator=g)
    policy = base.clone()
    policy[::2] = 1e4 * torch.randn(12, vocab, generator=g)  # disjoint argmaxes: JS near ln 2
    policy[1::4] += 50.0 * torch.randn(6, vocab, generator=g)
    return base, policy


def test_extreme_logits_stay_accurate():
    base, policy = extreme_pair(400)
    result = token_divergence(base, policy, top_k=4)
    assert_matches_reference(result, reference_divergence(base, policy, top_k=4), atol=1e-5, rtol=1e-4)
    assert (result.js <= math.log(2)).all() and torch.isfinite(result.js).all()


def test_masked_tokens_give_exact_js_and_infinite_kl():
    base, policy = _pair(12, 80, seed=7)
    base[0, :40] = -math.inf  # the base masks tokens the policy can emit
    policy[1, 10:70] = -math.inf  # and the other way round
    base[2, :5] = policy[2, :5] = -math.inf  # both mask the same tokens
    policy[3, :79] = -math.inf  # the policy is one-hot
    result = token_divergence(base, policy, top_k=3, chunk_size=5)
    ref = reference_divergence(base, policy, top_k=3)
    assert_matches_reference(result, ref)
    assert math.isinf(result.kl_policy_base[0]) and math.isfinite(result.kl_base_policy[0])
    assert math.isinf(result.kl_base_policy[1]) and math.isfinite(result.kl_policy_base[1])
    assert math.isfinite(result.kl_base_policy[2]) and math.isfinite(result.kl_policy_base[2])
    assert result.policy_entropy[3] == 0


def test_bf16_inputs_match_reference_on_their_values():
    base, policy = _pair(32, 600, seed=11, dtype=torch.bfloat16)
    result = token_divergence(base, policy, chunk_size=10, top_k=4)
    assert result.js.dtype == torch.float32
    # the reference sees exactly the bf16 values, upcast
    assert_matches_reference(result, reference_divergence(base.float(), policy.float(), top_k=4), atol=1e-5)


def test_float64_inputs_are_computed_in_float64():
    base, policy = _pair(10, 200, seed=13, dtype=torch.float64)
    result = token_divergence(base, policy, top_k=4)
    assert result.js.dtype == torch.float64
    assert_matches_reference(result, reference_divergence(base, policy, top_k=4), atol=1e-12, rtol=1e-10)


def test_identical_rows_give_exactly_zero():
    base, _ = _pair(9, 333, seed=17)
    result = token_divergence(base, base.clone(), top_k=6)
    for name in ["js", "kl_base_policy", "kl_policy_base"]:
        assert torch.equal(getattr(result, name), torch.zeros(9)), name
    assert result.top1_agree.all() and (result.policy_top1_rank_in_base == 1).all()
    assert torch.equal(result.topk_overlap, torch.ones(9, 6))
    torch.testing.assert_close(result.base_entropy, result.policy_entropy)


def test_padded_vocabulary_is_ignored_with_vocab_size():
    base, policy = _pair(8, 120, seed=19)
    padded_base = torch.cat([base, torch.full((8, 9), 50.0)], dim=1)
    padded_policy = torch.cat([policy, -50.0 * torch.ones(8, 9)], dim=1)
    padded = token_divergence(padded_base, padded_policy, vocab_size=120)
    plain = token_divergence(base, policy)
    for name, value in plain.as_dict().items():
        torch.testing.assert_close(getattr(padded, name), value, msg=name)


def test_temperature_equals_scaled_logits():
    base, policy = _pair(8, 90, seed=23)
    hot = token_divergence(base, policy, temperature=0.7)
    scaled = token_divergence(base / 0.7, policy / 0.7)
    for name, value in scaled.as_dict().items():
        torch.testing.assert_close(getattr(hot, name), value, msg=name)


def test_top_p_mode_matches_truncated_reference_and_differs_from_exact():
    base, policy = _pair(40, 64, scale=2.0, seed=29)
    truncated = token_divergence(base, policy, top_p=0.7, top_k=3)
    ref = reference_divergence(base, policy, top_p=0.7, top_k=3)
    np.testing.assert_allclose(truncated.js.double().numpy(), ref["js"], atol=2e-6)
    np.testing.assert_allclose(truncated.base_entropy.double().numpy(), ref["base_entropy"], atol=2e-6)
    assert np.array_equal(np.isinf(truncated.kl_base_policy.numpy()), np.isinf(ref["kl_base_policy"]))
    exact = token_divergence(base, policy, top_k=3)
    assert not torch.allclose(truncated.js, exact.js, atol=1e-3)


def test_chunking_does_not_change_results():
    base, policy = _pair(50, 257, seed=31)
    whole = token_divergence(base, policy, chunk_size=50)
    for chunk_size in (1, 3, 16):
        chunked = token_divergence(base, policy, chunk_size=chunk_size)
        for name, value in whole.as_dict().items():
            torch.testing.assert_close(getattr(chunked, name), value, msg=f"{name} chunk {chunk_size}")


def test_empty_input_gives_empty_result():
    result = token_divergence(torch.zeros(0, 10), torch.zeros(0, 10), top_k=3)
    assert len(result) == 0 and result.topk_overlap.shape == (0, 3)


def test_result_slicing_and_concatenation():
    base, policy = _pair(10, 30)
    result = token_divergence(base, policy, top_k=2)
    joined = TokenDivergence.cat([result[:4], result[4:]])
    for name, value in result.as_dict().items():
        assert torch.equal(getattr(joined, name), value)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda b, p: b.__setitem__((37, 3), math.nan), "base_logits row 37 contains NaN"),
        (lambda b, p: p.__setitem__((21, 0), math.inf), r"policy_logits row 21 contains \+inf"),
        (lambda b, p: b.__setitem__(12, -math.inf), "base_logits row 12 has no finite logit"),
    ],
)
def test_bad_values_name_the_first_bad_row(mutate, message):
    base, policy = _pair(40, 30)
    mutate(base, policy)
    base[39, 0] = math.nan  # a later bad row must not be the one reported
    with pytest.raises(ValueError, match=message):
        token_divergence(base, policy, chunk_size=8)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"base_logits": torch.zeros(3, 5), "policy_logits": torch.zeros(3, 6)}, ValueError, "differ in shape"),
        ({"base_logits": torch.zeros(2, 3, 5), "policy_logits": torch.zeros(2, 3, 5)}, ValueError, r"shape \[N, V\]"),
        ({"base_logits": torch.zeros(3, 5, dtype=torch.long), "policy_logits": torch.zeros(3, 5)}, TypeError, "floating-point"),
        ({"vocab_size": 9}, ValueError, "vocab_size=9"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"top_k": 6}, ValueError, "top_k"),
        ({"chunk_size": -1}, ValueError, "chunk_size"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    call = {"base_logits": torch.zeros(3, 5), "policy_logits": torch.zeros(3, 5)} | kwargs
    with pytest.raises(error, match=message):
        token_divergence(**call)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    base, policy = _pair(300, 4096, seed=37, dtype=torch.bfloat16)
    on_cpu = token_divergence(base, policy)
    on_gpu = token_divergence(base.cuda(), policy.cuda()).to("cpu")
    for name, value in on_cpu.as_dict().items():
        torch.testing.assert_close(getattr(on_gpu, name), value, atol=2e-6, rtol=1e-4, msg=name)
