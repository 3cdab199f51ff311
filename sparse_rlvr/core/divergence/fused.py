"""The divergence core's fast path: every TokenDivergence field of one fixed-shape chunk, fused.

This torch.compile kernel is the fast path on CUDA, and on CPU where the hand-written kernel
(cpu_kernel.cpp, through cpu_statistics) cannot be built; both end in `finish`, which turns the
row sums into the fields.

`chunk_statistics` is plain tensor code; `run_compiled` hands it to torch.compile (inductor:
vectorised C++ loops that give each thread whole rows on CPU, Triton kernels on CUDA), once per
(rows, V, strides, dtype, device, top_k). The logits are read, upcast and reduced on the fly;
no [C, V] intermediate is stored. On CPU inductor makes three passes over each row: block
maxima (topk.py, which also gives the row max); S_a, S_b; then the entropy/KL sums, JS and the
rank together (it recomputes e^a, e^b there rather than storing them). Row sums are two-level
(_rowsum): float32 within 128-column blocks, float64 across blocks.

Notation as in exact.py: x, y = base and policy logits / T; p = softmax(x), q = softmax(y);
lp, lq their logs; d = lq - lp. JS uses exact.py's cancellation-free form, summed as one
non-negative term per token, so no two row sums cancel:

    JS = 1/2 * sum_v [ (p + q) u - p * relu(d) - q * relu(-d) ],  u = log1p(tanh(|d| / 2))

with u = log(1 + |q - p| / (q + p)) (one log, no tanh), or its Taylor series in d where
|d| < SERIES_BELOW (see _js_sum). Entropies and KLs come from unnormalised sums (a = x - max x,
S_a = sum e^a):

    H(p) = log S_a - sum(e^a a) / S_a,   KL(p||q) = sum(e^a (a - b)) / S_a + log S_b - log S_a

Identical rows give d = 0, p = q and a = b exactly, hence JS = KL = 0 exactly. Rows with -inf
(masked) logits, NaN or +inf give a non-finite entropy here; exact.py recomputes those chunks
on the eager path.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable

import torch

from sparse_rlvr.core.divergence import cpu_kernel
from sparse_rlvr.core.divergence.topk import topk_and_max

logger = logging.getLogger(__name__)

COMPILE_ENV = "SPARSE_RLVR_DIVERGENCE_COMPILE"
"""Set to 0 to always use the eager path (1 forces the compiled path even for small inputs)."""
INDUCTOR_OPTIONS = {"realize_reads_threshold": 1000, "realize_cpu_acc_reads_threshold": 1000, "realize_cpu_opcount_threshold": 1000}
"""Let inductor recompute cheap reused expressions (d, |d|, ...) inside the fused loops instead of
storing them as [C, V] buffers; reused exps are avoided in the graph itself (see _exp_sums)."""
_compiled: dict[tuple, Callable] = {}
_broken: list[str] = []  # the reason compiling failed in this process, once it has


BLOCK = 128
"""Columns per block of the two-level row sums (float32 within a block, float64 across blocks)."""
SERIES_BELOW = 0.5
"""|d| below which u(|d|) comes from its Taylor series in d (exact to float32 rounding there)."""


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
    at_top1 = base.gather(1, policy_top[:, :1])
    inverse_t = 1.0 / temperature
    parts = _blocked(base, policy)
    # pass 1: every sum that needs only e^a, e^b
    sums = [sum(s) for s in zip(*(_exp_sums(x, y, base_max, policy_max, inverse_t) for x, y in parts))]
    sum_a, sum_b = sums[:2]
    log_sum_a, log_sum_b = sum_a.log(), sum_b.log()
    # pass 2: JS, now that the normalisers are known
    norms = ((log_sum_b - log_sum_a).float(), (1.0 / sum_a).float(), (1.0 / sum_b).float())
    js, above = (sum(s) for s in zip(*(_js_sum(x, y, base_max, policy_max, at_top1, inverse_t, *norms) for x, y in parts)))
    return finish(
        sums, js, above, base_max, policy_max, at_top1, base_top_values, base_top, policy_top_values, policy_top,
        inverse_t, top_k,
    )


def finish(
    sums: list[torch.Tensor], js_sum: torch.Tensor, above: torch.Tensor, base_max: torch.Tensor,
    policy_max: torch.Tensor, at_top1: torch.Tensor, base_top_values: torch.Tensor, base_top: torch.Tensor,
    policy_top_values: torch.Tensor, policy_top: torch.Tensor, inverse_t: torch.Tensor, top_k: int,
) -> tuple[torch.Tensor, ...]:
    """The TokenDivergence fields from a chunk's row sums ([C, 1] float64) and top-k lists.

    Shared by the compiled path (chunk_statistics) and the CPU kernel (cpu_statistics).
    sums: S_a, S_b, sum e^a a, sum e^b b, sum e^a (a - b), sum e^b (b - a); js_sum: the sum of
    JS terms (JS = js_sum / 2); above: #{v: x_v > x[policy top-1]}; maxima [C, 1], top-k values
    in raw logits (any float dtype); at_top1: the base logit at the policy's top-1, [C, 1].
    """
    sum_a, sum_b, sum_a_a, sum_b_b, sum_a_ab, sum_b_ba = sums
    log_sum_a, log_sum_b = sum_a.log(), sum_b.log()
    base_entropy, policy_entropy = log_sum_a - sum_a_a / sum_a, log_sum_b - sum_b_b / sum_b
    kl_pq = sum_a_ab / sum_a + (log_sum_b - log_sum_a)
    kl_qp = sum_b_ba / sum_b + (log_sum_a - log_sum_b)
    js = 0.5 * js_sum
    rank = above.long() + 1  # on the raw logits: exactly the order of the float64 reference
    a_top1 = (at_top1.float() - base_max.float()) * inverse_t
    base_top_logprobs = (base_top_values.float() - base_max.float()) * inverse_t - log_sum_a
    policy_top_logprobs = (policy_top_values.float() - policy_max.float()) * inverse_t - log_sum_b
    policy_top1 = policy_top[:, :1]
    return (
        js[:, 0].float().clamp(0.0, 0.6931471805599453) + 0.0,  # + 0.0 turns -0.0 into 0.0
        kl_pq[:, 0].float().clamp_min(0.0) + 0.0,
        kl_qp[:, 0].float().clamp_min(0.0) + 0.0,
        base_entropy[:, 0].float().clamp_min(0.0),
        policy_entropy[:, 0].float().clamp_min(0.0),
        base_top[:, 0],
        policy_top1[:, 0],
        rank[:, 0] == 1,
        rank[:, 0],
        (torch.exp(a_top1.double()) / sum_a)[:, 0].float(),
        topk_overlap(base_top, policy_top, top_k),
        base_top,
        base_top_logprobs.float(),
        policy_top,
        policy_top_logprobs.float(),
    )


def cpu_statistics(base: torch.Tensor, policy: torch.Tensor, temperature: torch.Tensor, top_k: int) -> tuple[torch.Tensor, ...] | None:
    """chunk_statistics through the hand-written CPU kernel (cpu_kernel.cpp); None if it cannot be built.

    Same fields, same formulas after the row sums (finish); any number of rows, no padding.
    """
    op = cpu_kernel.row_sums_op()
    if op is None:
        return None
    inverse_t = 1.0 / temperature
    sums, maxima, base_top_values, base_top, policy_top_values, policy_top, at_top1 = op(
        base, policy, float(inverse_t), max(top_k, 1)
    )
    columns = [column.unsqueeze(1) for column in sums.unbind(1)]
    return finish(
        columns[:6], columns[6], columns[7], maxima[:, :1], maxima[:, 1:], at_top1.unsqueeze(1), base_top_values,
        base_top, policy_top_values, policy_top, inverse_t, top_k,
    )


def _blocked(base: torch.Tensor, policy: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The chunk as [C, V // BLOCK, BLOCK] blocks plus a [C, V % BLOCK] tail (either may be absent)."""
    rows, vocab = base.shape
    head = vocab // BLOCK * BLOCK
    parts = []
    if head:
        parts.append((base[:, :head].reshape(rows, -1, BLOCK), policy[:, :head].reshape(rows, -1, BLOCK)))
    if head < vocab:
        parts.append((base[:, head:], policy[:, head:]))
    return parts


def _rowsum(x: torch.Tensor) -> torch.Tensor:
    """[C, blocks, BLOCK] or [C, tail] float32 terms -> [C, 1] float64 row sums.

    Blocks are summed in float32 (128 terms: error ~1e-8 relative), the block sums in float64.
    One float32 running sum over V = 152k errs by ~1e-5 (measured, inductor's cascade sum
    included); float64 accumulation of every term is exact but ~7x slower on CPU (inductor
    converts each vector), so the two-level sum keeps the accuracy at float32's speed.
    """
    if x.dim() == 3:
        return x.sum(-1).sum(-1, keepdim=True, dtype=torch.float64)
    return x.sum(-1, keepdim=True, dtype=torch.float64)


def _shifted(x, y, base_max, policy_max, inverse_t):
    """a = (x - max x) / T, b = (y - max y) / T in float32, broadcast to x's [C, ...] shape."""
    extra = (1,) * (x.dim() - 2)
    a = (x.float() - base_max.float().view(-1, 1, *extra)) * inverse_t
    b = (y.float() - policy_max.float().view(-1, 1, *extra)) * inverse_t
    return a, b


def _exp_sums(x, y, base_max, policy_max, inverse_t):
    """Row sums of e^a, e^b, e^a a, e^b b, e^a (a - b), e^b (b - a).

    Each sum recomputes a, b, e^a, e^b as its own graph nodes (with CSE off at compile time):
    inductor then fuses all sums into one loop, where its C++ CSE computes each exp once. A
    shared e^a would be stored as a [C, V] buffer (inductor stores reused exps on CPU) and
    read back from memory by each sum.
    """
    sums = []
    for term in _EXP_TERMS:
        a, b = _shifted(x, y, base_max, policy_max, inverse_t)
        sums.append(_rowsum(term(a, b, torch.exp(a), torch.exp(b))))
    return tuple(sums)


_EXP_TERMS = (
    lambda a, b, ea, eb: ea,
    lambda a, b, ea, eb: eb,
    lambda a, b, ea, eb: ea * a,
    lambda a, b, ea, eb: eb * b,
    lambda a, b, ea, eb: ea * (a - b),
    lambda a, b, ea, eb: eb * (b - a),
)


def _js_sum(x, y, base_max, policy_max, at_top1, inverse_t, shift, inv_sum_a, inv_sum_b):
    """Row sums of exact.py's non-negative JS terms (p + q) u - p relu(d) - q relu(-d), and #{v: x_v > x_top1}.

    u = log1p(tanh(|d| / 2)) = log(1 + |q - p| / (q + p)), one log per element; where
    |d| < SERIES_BELOW, u comes from its Taylor series in d instead, which stays exact as
    d -> 0 (the ratio's rounding, ~1e-7, would swamp JS ~ d^2 of nearly identical rows).
    Identical rows give p = q, d = 0, u = 0: JS = 0 exactly. p and q are rebuilt for each
    use (see _exp_sums); inductor computes each exp once per element.
    """
    extra = (1,) * (x.dim() - 2)

    def p() -> torch.Tensor:
        a, _ = _shifted(x, y, base_max, policy_max, inverse_t)
        return torch.exp(a) * inv_sum_a.view(-1, 1, *extra)

    def q() -> torch.Tensor:
        _, b = _shifted(x, y, base_max, policy_max, inverse_t)
        return torch.exp(b) * inv_sum_b.view(-1, 1, *extra)

    a, b = _shifted(x, y, base_max, policy_max, inverse_t)
    d = (b - a) - shift.view(-1, 1, *extra)
    ratio = (q() - p()).abs() / (q() + p()).clamp_min(torch.finfo(torch.float32).tiny)  # 0 where both underflow
    e = d.abs()
    e2 = e * e
    # ln 2 - softplus(-e) = e/2 - e^2/8 + e^4/192 - e^6/2880 + 17 e^8/645120 - ...
    series = e * 0.5 - e2 * (0.125 - e2 * (1.0 / 192 - e2 * (1.0 / 2880 - e2 * (17.0 / 645120))))
    u = torch.where(e < SERIES_BELOW, series, torch.log(1.0 + ratio))
    js = _rowsum((p() + q()) * u - p() * d.clamp_min(0.0) + q() * d.clamp_max(0.0))  # every term >= 0
    # the policy top-1's rank under the base: a float32 count per block (exact), in the same loop
    above = _rowsum(torch.where(x > at_top1.view(-1, *(1,) * (x.dim() - 1)), 1.0, 0.0))
    return js, above


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
        with torch._functorch.config.patch(cse=False):  # see _exp_sums
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
    return torch.compile(fresh, dynamic=False, fullgraph=True, options=INDUCTOR_OPTIONS)
