"""The per-token result of comparing two next-token distributions."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class TokenDivergence:
    """Per-position comparison of a base and a policy next-token distribution.

    Notation: p = base distribution, q = policy distribution, m = (p + q) / 2, natural log.
    All tensors have N rows (one per token position) on the device of the inputs.
    """

    js: torch.Tensor
    """[N] Jensen-Shannon divergence JS(p, q) = (KL(p||m) + KL(q||m)) / 2, in [0, ln 2]."""
    kl_base_policy: torch.Tensor
    """[N] KL(p || q); +inf where the policy masks a token the base can emit."""
    kl_policy_base: torch.Tensor
    """[N] KL(q || p); +inf where the base masks a token the policy can emit."""
    base_entropy: torch.Tensor
    """[N] H(p)."""
    policy_entropy: torch.Tensor
    """[N] H(q)."""
    base_top1: torch.Tensor
    """[N] int64 token id of the base's most likely token."""
    policy_top1: torch.Tensor
    """[N] int64 token id of the policy's most likely token."""
    top1_agree: torch.Tensor
    """[N] bool: the policy's top-1 token is also a most likely token of the base (ties count)."""
    policy_top1_rank_in_base: torch.Tensor
    """[N] int64 rank (1 = top) of the policy's top-1 token under the base: 1 + #{v: p_v > p_top}."""
    base_prob_of_policy_top1: torch.Tensor
    """[N] p of the policy's top-1 token."""
    topk_overlap: torch.Tensor
    """[N, K] |top-k(p) ∩ top-k(q)| / k for k = 1..K (column k-1)."""
    base_topk_ids: torch.Tensor
    """[N, max(K, 1)] int64 the base's most likely tokens, best first."""
    base_topk_logprobs: torch.Tensor
    """[N, max(K, 1)] log p of those tokens."""
    policy_topk_ids: torch.Tensor
    """[N, max(K, 1)] int64 the policy's most likely tokens, best first."""
    policy_topk_logprobs: torch.Tensor
    """[N, max(K, 1)] log q of those tokens."""

    def __len__(self) -> int:
        return self.js.shape[0]

    def to(self, device: torch.device | str) -> TokenDivergence:
        """The same result on another device."""
        return TokenDivergence(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __getitem__(self, index: slice | torch.Tensor) -> TokenDivergence:
        """Rows selected by a slice, an index tensor or a boolean mask."""
        return TokenDivergence(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def cat(parts: list[TokenDivergence]) -> TokenDivergence:
        """Concatenate results computed on consecutive row chunks."""
        return TokenDivergence(
            **{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(TokenDivergence)}
        )

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Field name -> tensor, e.g. to build a DataFrame or log to W&B."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
