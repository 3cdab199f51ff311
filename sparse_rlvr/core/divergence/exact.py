"""Exact per-token divergence between two next-token distributions, streamed over tokens.

Notation: x, y are base and policy logits of one position; p = softmax(x / T), q = softmax(y / T);
lp = log p, lq = log q; d = lq - lp; m = (p + q) / 2.

The JS sum is written so that no two large terms cancel (float32 keeps ~1e-7 absolute accuracy
on rows with huge logit gaps and gives exactly 0 for identical rows):

    lm - lp = softplus(d) - ln 2,  softplus(d) = relu(d) + ln 2 - u,  u = log1p(tanh(|d| / 2))
    JS = 1/2 * sum_v [ (p + q) u - p * relu(d) - q * relu(-d) ]

u = ln 2 - log1p(exp(-|d|)) is computed as log1p(tanh(|d| / 2)), which keeps full relative
precision for tiny |d|: nearly identical rows get JS accurate to ~1e-13, not ~1e-8.

Every term is bounded (p * relu(d) <= d * exp(-d) since q <= 1), so the row sum is accurate.
Peak extra memory is O(chunk x V): only one chunk of rows is ever upcast and expanded.

Two paths compute the same fields (tested equal, and against a float64 reference):
- compiled: on CPU (float32/bf16/fp16), a hand-written kernel (cpu_kernel.cpp, built once per
  machine) makes the row sums with each row in cache; elsewhere (CUDA, or where it cannot be
  built) fused.py's torch.compile'd kernel, one per fixed chunk shape, rows padded to that
  shape. Both use the same JS form (u from one log, or its series for small |d|), entropies and KLs
  from unnormalised exp sums; float32 terms summed in float32 within 128-column blocks, the
  block sums in float64. Used for bf16/fp16/fp32 inputs, on CPU and CUDA.
- eager (eager.py): plain tensor ops; the reference, and the path for float64 inputs, top_p,
  chunks holding -inf (masked) logits or bad values (recomputed there, which also names the
  bad row), inputs too small to repay a compile, and machines where compiling fails (one
  warning per process). SPARSE_RLVR_DIVERGENCE_COMPILE=0 or compiled=False forces it.
"""

from __future__ import annotations

import torch

from sparse_rlvr.core.divergence import cpu_kernel, fused
from sparse_rlvr.core.divergence.checks import check_pair
from sparse_rlvr.core.divergence.eager import Workspace, chunk_divergence
from sparse_rlvr.core.divergence.result import TokenDivergence

DEFAULT_TOP_K = 10
CHUNK_BYTES = {"cpu": 4 << 20, "cuda": 512 << 20}
"""Size of one eager [chunk, V] work buffer: cache-sized on CPU (6 rows at V = 152k measured fastest), large on GPUs."""
COMPILED_CHUNK_BYTES = {"cpu": 256 << 20, "cuda": 512 << 20}
"""Size of a [chunk, V] float32 tensor, which sets the compiled kernel's rows per chunk (it stores
no [chunk, V] intermediate; a short last chunk is copied into a padded [chunk, V] input buffer):
256 rows at V = 152k on CPU (each chunk runs about ten parallel loops, each ending in a thread
barrier; on a loaded 2-core machine 256 rows ran ~1.3-1.8x faster than 64, and 4-16 rows 2-6x
slower), 512 on GPUs. Rounded down to a power of two of rows."""
MIN_COMPILED_ROWS = 32
"""A short last chunk is padded to at least this many rows (or the chunk size), a power of two."""
AUTO_COMPILE_MIN_LOGITS = 1 << 25
"""In auto mode, torch.compile only for calls with at least this many logits (N x V; 221 rows at
V = 152k): compiling costs seconds once per shape and process, eager is fast enough below. The
CPU kernel (cpu_kernel.py) has no per-shape cost and runs at any size."""
FIELDS = (
    "js", "kl_base_policy", "kl_policy_base", "base_entropy", "policy_entropy", "base_top1",
    "policy_top1", "top1_agree", "policy_top1_rank_in_base", "base_prob_of_policy_top1",
    "topk_overlap", "base_topk_ids", "base_topk_logprobs", "policy_topk_ids", "policy_topk_logprobs",
)


def token_divergence(
    base_logits: torch.Tensor,
    policy_logits: torch.Tensor,
    *,
    vocab_size: int | None = None,
    temperature: float = 1.0,
    top_p: float | None = None,
    top_k: int | None = None,
    chunk_size: int | None = None,
    compiled: bool | None = None,
) -> TokenDivergence:
    """Compare base and policy next-token distributions at every position, exactly.

    Args:
        base_logits: [N, V] logits of the base (reference) model, any float dtype, any device.
        policy_logits: [N, V] logits of the policy (RL) model at the same positions.
        vocab_size: use only the first `vocab_size` columns (the tokenizer's vocabulary), for
            models whose embedding is padded beyond it (Qwen2.5: 152,064 rows, 151,665 tokens).
        temperature: compare softmax(logits / temperature) instead of softmax(logits).
        top_p: if set, compare the top-p (nucleus) truncated, renormalised distributions, as
            the paper did for memory reasons; None (default) compares the full vocabulary.
        top_k: K for `topk_overlap` (k = 1..K); default min(10, V); 0 disables it.
        chunk_size: rows per chunk; default from a per-device byte budget (CHUNK_BYTES for the
            eager path, COMPILED_CHUNK_BYTES for the compiled one).
        compiled: True: use the compiled kernel whenever it applies; False: the eager path;
            None (default): SPARSE_RLVR_DIVERGENCE_COMPILE (0 or 1) if set, else the CPU kernel
            wherever it applies, and torch.compile for calls with at least AUTO_COMPILE_MIN_LOGITS
            logits. Results agree within ~1e-7.

    Returns:
        A TokenDivergence of float32 (float64 for float64 inputs) [N] tensors and [N, K] overlap.

    Raises:
        ValueError: shapes differ or are not 2-D, or a row contains NaN/+inf or is all -inf
            (the message names the first bad row). -inf entries (masked tokens) are allowed.
    """
    vocab = check_pair(base_logits, policy_logits, vocab_size)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None for the exact full distribution, got {top_p}")
    top_k = min(DEFAULT_TOP_K, vocab) if top_k is None else top_k
    if not 0 <= top_k <= vocab:
        raise ValueError(f"top_k must be in [0, {vocab}] (the vocabulary size), got {top_k}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 (or None for the default), got {chunk_size}")
    base, policy = base_logits[:, :vocab], policy_logits[:, :vocab]
    if _wants_compiled(compiled, base, policy, top_p):
        rows = chunk_size or compiled_chunk_size(vocab, base.device)
        result = _compiled_divergence(base, policy, temperature, top_k, rows)
        if result is not None:
            return result
    return _eager_divergence(base, policy, temperature, top_p, top_k, chunk_size)


def default_chunk_size(vocab: int, device: torch.device, dtype: torch.dtype = torch.float32) -> int:
    """Rows per eager chunk so that one upcast [rows, vocab] buffer fits the device's byte budget."""
    budget = CHUNK_BYTES.get(device.type, CHUNK_BYTES["cuda"])
    return max(1, budget // (vocab * torch.finfo(dtype).bits // 8))


def compiled_chunk_size(vocab: int, device: torch.device) -> int:
    """Rows per compiled chunk: the largest power of two within COMPILED_CHUNK_BYTES of float32."""
    rows = max(1, COMPILED_CHUNK_BYTES.get(device.type, COMPILED_CHUNK_BYTES["cuda"]) // (4 * vocab))
    return 1 << (rows.bit_length() - 1)


def _wants_compiled(compiled: bool | None, base: torch.Tensor, policy: torch.Tensor, top_p: float | None) -> bool:
    """Whether this call goes to the compiled kernel (see token_divergence's `compiled`)."""
    if top_p is not None or torch.float64 in (base.dtype, policy.dtype) or len(base) == 0:
        return False  # the eager path covers these exactly; see the module docstring
    if compiled is None:
        choice = fused.compile_choice()
        # the CPU kernel costs nothing per shape (one build per machine): use it at any size
        by_hand = choice == "auto" and cpu_kernel.usable(base, policy)
        compiled = by_hand or choice == "compiled" or (choice == "auto" and base.numel() >= AUTO_COMPILE_MIN_LOGITS)
    return compiled and not fused.compile_failed()


def _eager_divergence(
    base: torch.Tensor, policy: torch.Tensor, temperature: float, top_p: float | None, top_k: int,
    chunk_size: int | None, row_offset: int = 0,
) -> TokenDivergence:
    """Every field chunk by chunk in plain tensor ops (eager.py), into preallocated outputs.

    `row_offset`: index of the first row in the caller's input, for error messages.
    """
    n, vocab = base.shape
    dtype = torch.float64 if base.dtype == torch.float64 else torch.float32
    rows = min(chunk_size or default_chunk_size(vocab, base.device, dtype), max(1, n))
    workspace = Workspace(rows, vocab, dtype, base.device)
    out: dict[str, torch.Tensor] = {}
    for start in range(0, max(n, 1), rows):  # N = 0 runs once, to shape the empty fields
        part = chunk_divergence(
            base[start : start + rows], policy[start : start + rows], workspace.view(min(rows, n - start)),
            row_offset=row_offset + start, temperature=temperature, top_p=top_p, top_k=top_k,
        )
        # results go straight into preallocated outputs: no per-chunk tensors outlive the chunk
        for name, value in part.items():
            if name not in out:
                out[name] = value.new_empty((n, *value.shape[1:]))
            out[name][start : start + rows] = value
    return TokenDivergence(**out)


def _compiled_divergence(
    base: torch.Tensor, policy: torch.Tensor, temperature: float, top_k: int, rows: int
) -> TokenDivergence | None:
    """Every field through the compiled kernel, `rows` rows at a time; None if compiling failed.

    The last chunk is copied into a zero-padded buffer of a fixed number of rows (a power of
    two), so each (rows, V, dtype, device) compiles once. Chunks whose rows hold -inf, NaN or
    +inf give non-finite values here and are recomputed on the eager path, in order, which
    also raises for the first bad row.
    """
    n = len(base)
    t = torch.tensor(float(temperature), dtype=torch.float32, device=base.device)
    by_hand = cpu_kernel.usable(base, policy)
    out: dict[str, torch.Tensor] = {}
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        if by_hand:  # the CPU kernel takes any number of rows: no padding
            part = fused.cpu_statistics(*(_contiguous_rows(x[start:stop]) for x in (base, policy)), t, top_k)
        else:
            part = fused.run_compiled(*_padded(base, policy, start, stop, rows), t, top_k)
        if part is None:
            return None
        for name, value in zip(FIELDS, part, strict=True):
            if name not in out:
                out[name] = value.new_empty((n, *value.shape[1:]))
            out[name][start:stop] = value[: stop - start]
    finite = torch.stack([out[name].isfinite() for name in ("js", "base_entropy", "policy_entropy")]).all(0)
    bad = (~finite).nonzero()[:, 0].tolist()  # one device sync per call
    for start in sorted({row // rows * rows for row in bad}):
        stop = min(start + rows, n)
        part = _eager_divergence(base[start:stop], policy[start:stop], temperature, None, top_k, None, row_offset=start)
        for name in FIELDS:
            out[name][start:stop] = getattr(part, name)
    return TokenDivergence(**out)


def _contiguous_rows(x: torch.Tensor) -> torch.Tensor:
    """x itself when its rows are contiguous (unit column stride), else a contiguous copy."""
    return x if x.stride(-1) == 1 else x.contiguous()


def _padded(base: torch.Tensor, policy: torch.Tensor, start: int, stop: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows [start, stop) of both inputs, as views when the chunk is full, else zero-padded copies.

    A short chunk is padded to the next power of two (at least MIN_COMPILED_ROWS, at most
    `rows`), so short inputs compile a few shapes instead of paying for a full chunk.
    """
    chunk = []
    for x in (base, policy):
        part = _contiguous_rows(x[start:stop])
        if stop - start < rows:
            padded_rows = min(rows, max(MIN_COMPILED_ROWS, 1 << (stop - start - 1).bit_length()))
            # same row stride as a full chunk of the input, so both share one compiled kernel
            buffer = part.new_zeros(padded_rows, max(part.stride(0), part.shape[1]))[:, : part.shape[1]]
            buffer[: stop - start] = part
            part = buffer
        chunk.append(part)
    return chunk[0], chunk[1]
