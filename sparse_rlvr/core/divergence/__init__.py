"""Shared core: exact per-token divergence between base and policy next-token distributions.

``token_divergence(base_logits, policy_logits)`` returns a ``TokenDivergence`` with JS, both
KLs, both entropies and rank statistics per position, streamed over token chunks so that peak
extra memory is O(chunk x V).
"""

from sparse_rlvr.core.divergence.exact import token_divergence
from sparse_rlvr.core.divergence.result import TokenDivergence

__all__ = ["TokenDivergence", "token_divergence"]
