"""Top-k of each row over a large vocabulary in two stages (block maxima, then candidates), ties lowest id first."""

from __future__ import annotations

import torch

TOPK_BLOCK = 128
"""Columns per block (V = 151,936 = 1,187 x 128)."""


def topk_and_max(x: torch.Tensor, k: int, block: int = TOPK_BLOCK) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(values, ids) of the k largest entries of each row of x [C, V], best first, and the [C, 1] row max.

    torch.topk over V = 152k is slow on CPU, so the top-k is taken over candidates only: the k
    blocks of `block` columns with the largest maxima, plus the last V mod block columns. Every
    one of the k largest values is among them (were one in an unchosen block, the k chosen
    blocks would hold k values at least as large), so the values are exact. Equal values are
    ordered by lowest token id first (a stable sort over candidates in id order), as argmax
    and the float64 reference do, so top-1 and top-k ids are deterministic under ties.
    """
    rows, vocab = x.shape
    blocks = vocab // block
    tail_ids = torch.arange(blocks * block, vocab, device=x.device).expand(rows, -1)
    if blocks == 0:
        candidate_ids = tail_ids
        row_max = x.amax(-1, keepdim=True)
    else:
        block_max = x[:, : blocks * block].reshape(rows, blocks, block).amax(-1)
        row_max = block_max.amax(-1, keepdim=True)
        if vocab > blocks * block:
            row_max = torch.maximum(row_max, x[:, blocks * block :].amax(-1, keepdim=True))
        chosen = block_max.topk(min(k, blocks), dim=-1).indices.sort(dim=-1).values  # [C, kb], in id order
        offsets = torch.arange(block, device=x.device)
        candidate_ids = torch.cat([(chosen[:, :, None] * block + offsets).reshape(rows, -1), tail_ids], 1)
    values, where = x.gather(1, candidate_ids).sort(dim=-1, descending=True, stable=True)
    return values[:, :k], candidate_ids.gather(1, where[:, :k]), row_max
