"""The divergence core's fast path: every TokenDivergence field of one fixed-shape chunk, fused.

`chunk_statistics` is plain tensor code; `run_compiled` hands it to torch.compile (inductor:
vectorised C++ loops that give each thread whole rows on CPU, Triton kernels on CUDA), once per
(rows, V, strides, dtype, device, top_k). The logits are read, upcast and reduced on the fly
in three passes over each row (block maxima; exp sums, entropies, KLs; JS and rank); the only
[C, V] intermediates are e^a and e^b (float32), which inductor keeps between passes 2 and 3.
The top-k runs on a few blocks of candidates (topk.py).

Notation as in exact.py: x, y = base and policy logits / T; p = softmax(x), q = softmax(y);
lp, lq their logs; d = lq - lp. JS uses exact.py's cancellation-free form, summed as one
non-negative term per token, so no two row sums cancel:

    JS = 1/2 * sum_v [ (p + q) u - p * relu(d) - q * relu(-d) ],  u = log1p(tanh(|d| / 2))

Entropies and KLs come from unnormalised sums (a = x - max x, S_a = sum e^a, all sums in float64):

    H(p) = log S_a - sum(e^a a) / S_a,   KL(p||q) = sum(e^a (a - b)) / S_a + log S_b - log S_a

Identical rows give d = 0 and a = b exactly, hence JS = KL = 0 exactly. Rows with -inf (masked) logits,
NaN or +inf give a non-finite entropy here; exact.py recomputes those chunks on the eager path.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable

import torch

from sparse_rlvr.core.divergence.topk import topk_and_max

logger = logging.getLogger(__name__)

COMPILE_ENV = "SPARSE_RLVR_DIVERGENCE_COMPILE"
"""Set to 0 to always use the eager path (1 forces the compiled path even for small inputs)."""
_compiled: dict[tuple, Callable] = {}
_broken: list[str] = []  # the reason compiling failed in this process, once it has


def chunk_statistics(
    base: torch.Tensor, policy: torch.Tensor, temperature: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, ...]:
    """All TokenDivergence fields for a [C, V] chunk of base and policy logits (any float dtype).

    `temperature` is a 0-d float32 tensor (a tensor, so a new temperature does not recompile).
    Returns, in TokenDivergence field order: js, kl_base_policy, kl_policy_base, base_entropy,
    policy_entropy, base_top1, policy_top1, top1_agree, policy_top1_rank_in_base,
    base_prob_of_policy_top1, topk_overlap, base_topk_ids, base_topk_logprobs, policy_topk_ids,
    policy_topk_logprobs ([C] float32 / int64 / bool, and [C, K] or [C, max(K, 1)]).
    """
    k = max(top_k, 1)
    base_top_values, base_top, base_max = topk_and_max(base, k)
    policy_top_values, policy_top, policy_max = topk_and_max(policy, k)
    # a = x - max x <= 0, b = y - max y: the difference of raw logits is exact, then one rounding
    inverse_t = 1.0 / temperature
    a = (base.float() - base_max.float()) * inverse_t
    b = (policy.float() - policy_max.float()) * inverse_t
    ea, eb = torch.exp(a), torch.exp(b)
    # pass 2: every sum that needs only e^a, e^b (accumulated in float64; see _rowsum)
    sum_a, sum_b = _rowsum(ea), _rowsum(eb)
    log_sum_a, log_sum_b = sum_a.log(), sum_b.log()
    # H(p) = log S_a - sum(e^a a) / S_a; KL(p||q) = sum(e^a (a - b)) / S_a + log S_b - log S_a:
    # no float32 normaliser enters a sum, and identical rows give exactly 0
    base_entropy, policy_entropy = log_sum_a - _rowsum(ea * a) / sum_a, log_sum_b - _rowsum(eb * b) / sum_b
    kl_pq = _rowsum(ea * (a - b)) / sum_a + (log_sum_b - log_sum_a)
    kl_qp = _rowsum(eb * (b - a)) / sum_b + (log_sum_a - log_sum_b)
    # pass 3, JS in exact.py's form; inductor keeps e^a, e^b from pass 2 in [C, V] buffers, so
    # p and q cost a multiply each (note: its vectorised expm1 is exp - 1, so none is used here)
    d = (b - a) - (log_sum_b - log_sum_a).float()
    p, q = ea * (1.0 / sum_a).float(), eb * (1.0 / sum_b).float()
    u = torch.log1p(torch.tanh(d.abs() * 0.5))  # ln 2 - log1p(exp(-|d|)), exact for tiny |d|
    js = 0.5 * _rowsum((p + q) * u - p * d.clamp_min(0.0) + q * d.clamp_max(0.0))  # every term >= 0
    policy_top1 = policy_top[:, :1]
    at_top1 = base.gather(1, policy_top1)
    rank = (base > at_top1).sum(-1) + 1  # on the raw logits: exactly the order of the float64 reference
    a_top1 = (at_top1.float() - base_max.float()) * inverse_t
    base_top_logprobs = (base_top_values.float() - base_max.float()) * inverse_t - log_sum_a
    policy_top_logprobs = (policy_top_values.float() - policy_max.float()) * inverse_t - log_sum_b
    return (
        js[:, 0].float().clamp(0.0, 0.6931471805599453) + 0.0,  # + 0.0 turns -0.0 into 0.0
        kl_pq[:, 0].float().clamp_min(0.0) + 0.0,
        kl_qp[:, 0].float().clamp_min(0.0) + 0.0,
        base_entropy[:, 0].float().clamp_min(0.0),
        policy_entropy[:, 0].float().clamp_min(0.0),
        base_top[:, 0],
        policy_top1[:, 0],
        rank == 1,
        rank,
        (torch.exp(a_top1.double()) / sum_a)[:, 0].float(),
        topk_overlap(base_top, policy_top, top_k),
        base_top,
        base_top_logprobs.float(),
        policy_top,
        policy_top_logprobs.float(),
    )


def _rowsum(x: torch.Tensor) -> torch.Tensor:
    """[C, V] float32 terms -> [C, 1] row sums accumulated in float64.

    One float32 running sum over V = 152k errs by ~2e-5 (measured); float64 accumulation keeps
    the sums exact to the terms' own rounding. (A two-level float32-then-float64 sum was not
    clearly faster on the loaded test machine, and made inductor write a third [C, V] buffer.)
    """
    return x.sum(-1, keepdim=True, dtype=torch.float64)


def topk_overlap(base_top: torch.Tensor, policy_top: torch.Tensor, top_k: int) -> torch.Tensor:
    """[C, K] |top-k(p) ∩ top-k(q)| / k for k = 1..K, from the two [C, >= K] candidate lists."""
    # same[r, i, j]: base's i-th and policy's j-th candidates are the same token
    same = base_top[:, :top_k, None] == policy_top[:, None, :top_k]
    both_within = same.cumsum(1).cumsum(2).diagonal(dim1=1, dim2=2)  # |top-k ∩ top-k| for each k
    return both_within.float() / torch.arange(1, top_k + 1, device=base_top.device, dtype=torch.float32)


def compile_choice() -> str:
    """What SPARSE_RLVR_DIVERGENCE_COMPILE asks for: 'eager' (0), 'compiled' (1) or 'auto' (unset)."""
    value = os.environ.get(COMPILE_ENV, "").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("0", "false", "no", "off", "eager"):
        return "eager"
    if value in ("1", "true", "yes", "on", "compiled"):
        return "compiled"
    raise ValueError(f"{COMPILE_ENV}={value!r} is not understood; use 0 (eager), 1 (compiled) or leave it unset (auto)")


def compile_failed() -> bool:
    """True once compiling failed in this process (every later call then runs eagerly)."""
    return bool(_broken)


def run_compiled(base: torch.Tensor, policy: torch.Tensor, temperature: torch.Tensor, top_k: int) -> tuple[torch.Tensor, ...] | None:
    """chunk_statistics through its compiled kernel for this shape; None if compiling fails.

    A failure (no C++ compiler, no Triton, an inductor error) is logged once per process as a
    warning and disables compiling for the rest of the process; the caller then runs eagerly.
    """
    if _broken:
        return None
    key = (tuple(base.shape), base.stride(), policy.stride(), base.dtype, policy.dtype, base.device, top_k)
    try:
        if key not in _compiled:
            _compiled[key] = _compile_for(key)
        return _compiled[key](base, policy, temperature, top_k)
    except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
        _broken.append(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
        logger.warning(
            "sparse_rlvr: torch.compile of the divergence kernel failed (%s); using the eager path "
            "from now on (same results, slower). Install a C++ compiler (CPU) or Triton (CUDA), or set "
            "%s=0 to skip compiling.", _broken[0], COMPILE_ENV,
        )
        return None


def _compile_for(key: tuple) -> Callable:
    """A torch.compile'd chunk_statistics with its own code object, hence its own compile cache.

    One code object per shape keeps every shape within dynamo's per-code recompile limit (8),
    so a process that sees many shapes never silently falls back to uncompiled Python.
    """
    source = chunk_statistics
    code = source.__code__.replace(co_name=f"chunk_statistics_{len(_compiled)}")
    fresh = types.FunctionType(code, source.__globals__, code.co_name, source.__defaults__, source.__closure__)
    # tanh must stay Sleef's: the decomposed 2 / (1 + exp(-2x)) - 1 loses tiny |d| (JS ~ d^2)
    return torch.compile(fresh, dynamic=False, fullgraph=True, options={"cpp.use_decompose_tanh": False})
