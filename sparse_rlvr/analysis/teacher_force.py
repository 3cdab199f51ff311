"""Teacher-force both models over the same sequences and compare them at every response token.

Only hidden states [tokens, H] are kept per model; the LM head runs on chunks of `token_chunk`
response tokens at a time, so neither model's [T, V] logits exist in full, let alone in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sparse_rlvr.core.tables import Sequence
from sparse_rlvr.core.divergence import token_divergence
from sparse_rlvr.core.shift_stats import relative_position


@torch.inference_mode()
def response_hidden_states(model: Any, sequences: list[Sequence], pad_id: int) -> torch.Tensor:
    """[sum of response lengths, H]: the final hidden state at each position that predicts a response token."""
    device = next(model.parameters()).device
    lengths = [len(s.prompt_ids) + len(s.response_ids) for s in sequences]
    width = max(lengths)
    ids = torch.tensor([s.prompt_ids + s.response_ids + [pad_id] * (width - n) for s, n in zip(sequences, lengths)])
    mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).long()
    decoder = getattr(model, model.base_model_prefix)  # the transformer without its LM head
    hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
    # position t predicts token t + 1: the response's tokens are predicted from P - 1 .. P + R - 2
    return torch.cat(
        [hidden[row, len(s.prompt_ids) - 1 : lengths[row] - 1] for row, s in enumerate(sequences)]
    )


def lm_head_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from hidden states, with the final soft-capping some families (Gemma 2) apply."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


@torch.inference_mode()
def compare_sequences(
    base: Any,
    policy: Any,
    sequences: list[Sequence],
    *,
    pad_id: int,
    vocab_size: int,
    token_chunk: int,
    top_k: int,
    candidates: int,
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """Per-response-token columns (numpy) for sequences, in sequence then position order.

    Forwards run `batch_size` sequences at a time; the LM heads and the divergence then run over
    all the sequences' tokens in chunks of `token_chunk` (fewer, larger calls).
    """
    if not sequences:
        return _token_columns([]) | _empty_divergence_columns(top_k, candidates)
    batches = [sequences[i : i + batch_size] for i in range(0, len(sequences), batch_size)]
    base_hidden = torch.cat([response_hidden_states(base, batch, pad_id) for batch in batches])
    policy_hidden = torch.cat([response_hidden_states(policy, batch, pad_id) for batch in batches])
    parts = []
    for start in range(0, len(base_hidden), token_chunk):
        stop = start + token_chunk
        parts.append(
            token_divergence(
                lm_head_logits(base, base_hidden[start:stop]),
                lm_head_logits(policy, policy_hidden[start:stop]),
                vocab_size=vocab_size,
                top_k=top_k,
            ).to("cpu")
        )
    columns = _token_columns(sequences)
    result = type(parts[0]).cat(parts)
    for name in _DIVERGENCE_COLUMNS:
        columns[name] = getattr(result, name).numpy()
    c = min(candidates, result.base_topk_ids.shape[1])
    columns["base_top_ids"] = result.base_topk_ids[:, :c].numpy()
    columns["base_top_probs"] = result.base_topk_logprobs[:, :c].exp().numpy()
    columns["policy_top_ids"] = result.policy_topk_ids[:, :c].numpy()
    columns["policy_top_probs"] = result.policy_topk_logprobs[:, :c].exp().numpy()
    columns["topk_overlap"] = result.topk_overlap.numpy()
    return columns


_DIVERGENCE_COLUMNS = (
    "js", "kl_base_policy", "kl_policy_base", "base_entropy", "policy_entropy",
    "top1_agree", "policy_top1_rank_in_base", "base_prob_of_policy_top1",
)


def _empty_divergence_columns(top_k: int, candidates: int) -> dict[str, np.ndarray]:
    """Zero-row divergence columns with the right dtypes and widths."""
    c = min(candidates, max(top_k, 1))
    columns = {name: np.zeros(0, dtype=np.float32) for name in _DIVERGENCE_COLUMNS}
    columns |= {"top1_agree": np.zeros(0, dtype=bool), "policy_top1_rank_in_base": np.zeros(0, dtype=np.int64)}
    columns |= {f"{who}_top_{kind}": np.zeros((0, c), dtype=np.int64 if kind == "ids" else np.float32)
                for who in ("base", "policy") for kind in ("ids", "probs")}
    return columns | {"topk_overlap": np.zeros((0, top_k), dtype=np.float32)}


def _token_columns(sequences: list[Sequence]) -> dict[str, np.ndarray]:
    """sample_id, position, relative position, response length and token id of every response token."""
    sample_id, position, length, token_id = [], [], [], []
    for seq in sequences:
        n = len(seq.response_ids)
        sample_id += [seq.sample_id] * n
        position += range(n)
        length += [n] * n
        token_id += seq.response_ids
    position_array, length_array = np.asarray(position, dtype=np.int64), np.asarray(length, dtype=np.int64)
    return {
        "sample_id": np.asarray(sample_id, dtype=np.int64),
        "position": position_array,
        "rel_position": relative_position(position_array, length_array),
        "response_length": length_array,
        "token_id": np.asarray(token_id, dtype=np.int64),
    }
