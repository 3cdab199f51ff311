"""The compiled divergence kernel on CUDA (Triton) against float64; skipped without a CUDA device."""

from __future__ import annotations

import pytest
import torch

from sparse_rlvr.core.divergence import token_divergence
from tests.core.divergence.reference import reference_divergence
from tests.core.divergence.test_compiled_on_cpu import assert_close_to_reference, assert_same_as_eager
from tests.core.divergence.test_token_divergence import _pair

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_compiled_on_cuda_is_within_1e6_of_float64_at_full_vocabulary(dtype):
    base, policy = _pair(70, 151_936, seed=59, dtype=dtype)
    base[1], policy[1] = base[0], base[0]  # identical rows: exactly zero
    result = token_divergence(base.cuda(), policy.cuda(), compiled=True).to("cpu")
    assert_close_to_reference(result, reference_divergence(base.float(), policy.float(), top_k=10), atol=1e-6)
    assert result.js[1] == 0 and result.kl_base_policy[1] == 0 and result.kl_policy_base[1] == 0


def test_compiled_on_cuda_matches_eager_on_cpu():
    base, policy = _pair(300, 4096, seed=61, dtype=torch.bfloat16)
    base[7, :100] = -torch.inf  # a masked row: recomputed on the eager path, on the GPU
    on_gpu = token_divergence(base.cuda(), policy.cuda(), compiled=True, top_k=5).to("cpu")
    on_cpu = token_divergence(base, policy, compiled=False, top_k=5)
    assert_same_as_eager(on_gpu, on_cpu, atol=2e-6)
    assert torch.isinf(on_gpu.kl_policy_base[7])
