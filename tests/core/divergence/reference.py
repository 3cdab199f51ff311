"""Float64 reference for token_divergence, written with the plain textbook formulas."""

from __future__ import annotations

import numpy as np
import torch


def _truncate_top_p(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Keep the smallest most-likely set reaching top_p (row by row), renormalised."""
    out = np.zeros_like(probs)
    for r, row in enumerate(probs):
        order = np.argsort(-row, kind="stable")
        cumulative = 0.0
        for v in order:
            out[r, v] = row[v]
            cumulative += row[v]
            if cumulative >= top_p:
                break
    return out / out.sum(-1, keepdims=True)


def _kl(a: np.ndarray, b: np.ndarray, log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """KL(a||b) from log-probabilities, so a b that underflows to 0 still gives the finite KL."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, a * (log_a - log_b), 0.0)
    return terms.sum(-1)


def _entropy(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(a > 0, a * np.log(a), 0.0).sum(-1)


def reference_divergence(
    base: torch.Tensor,
    policy: torch.Tensor,
    vocab_size: int | None = None,
    temperature: float = 1.0,
    top_p: float | None = None,
    top_k: int = 10,
) -> dict[str, np.ndarray]:
    """Every TokenDivergence field, in float64 numpy, one obvious step at a time."""
    vocab = vocab_size or base.shape[1]
    x = base[:, :vocab].double().numpy() / temperature
    y = policy[:, :vocab].double().numpy() / temperature
    log_p = torch.log_softmax(torch.from_numpy(x), -1).numpy()
    log_q = torch.log_softmax(torch.from_numpy(y), -1).numpy()
    p, q = np.exp(log_p), np.exp(log_q)
    if top_p is not None:
        p, q = _truncate_top_p(p, top_p), _truncate_top_p(q, top_p)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.log(p), np.log(q)
    m = (p + q) / 2
    with np.errstate(divide="ignore"):
        log_m = np.log(m)
    policy_top1 = log_q.argmax(-1)
    ranks, overlaps, base_tops, policy_tops = [], [], [], []
    for r in range(len(p)):
        # ranked by log-probability: probabilities that underflow to 0 still have an order
        ranks.append(1 + int((log_p[r] > log_p[r, policy_top1[r]]).sum()))
        base_order, policy_order = np.argsort(-log_p[r], kind="stable"), np.argsort(-log_q[r], kind="stable")
        base_tops.append(base_order[:top_k])
        policy_tops.append(policy_order[:top_k])
        overlaps.append(
            [len(set(base_order[:k]) & set(policy_order[:k])) / k for k in range(1, top_k + 1)]
        )
    return {
        "js": 0.5 * _kl(p, m, log_p, log_m) + 0.5 * _kl(q, m, log_q, log_m),
        "kl_base_policy": _kl(p, q, log_p, log_q),
        "kl_policy_base": _kl(q, p, log_q, log_p),
        "base_entropy": _entropy(p),
        "policy_entropy": _entropy(q),
        "policy_top1_rank_in_base": np.array(ranks),
        "base_prob_of_policy_top1": p[np.arange(len(p)), policy_top1],
        "topk_overlap": np.array(overlaps).reshape(len(p), top_k),
        "base_topk_ids": np.array(base_tops).reshape(len(p), top_k),
        "policy_topk_ids": np.array(policy_tops).reshape(len(p), top_k),
        "base_topk_logprobs": np.take_along_axis(log_p, np.array(base_tops, dtype=np.int64).reshape(len(p), top_k), 1),
        "base_logprobs": log_p,
        "policy_logprobs": log_q,
        "policy_topk_logprobs": np.take_along_axis(log_q, np.array(policy_tops, dtype=np.int64).reshape(len(p), top_k), 1),
    }
