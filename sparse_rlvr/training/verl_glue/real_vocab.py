"""Cut a causal LM's logits to the tokenizer's vocabulary: padded lm_head rows are not tokens.

Real checkpoints pad ``lm_head`` beyond the tokenizer (Qwen2.5: 152,064 rows for 151,665 tokens).
verl's vLLM rollout samples from softmax over the first ``len(tokenizer)`` rows (it sets the rest
to -inf, ``vllm_rollout/utils.py::monkey_patch_compute_logits``) and returns those log-probs;
verl's FSDP actor takes log-probs and entropy over all rows, so its log-probs are off by
log(1 - padded mass). A forward hook on ``get_output_embeddings()`` that slices the padded rows
away makes every forward of the module use the rollout's distribution: verl's old-log-prob pass,
the PPO update, the reference, and sparse_rlvr's single pass. Slicing, not -inf: verl's
``entropy_from_logits`` gives NaN on rows holding -inf (0 * -inf).

Notation: V the lm_head's rows, n the tokenizer's vocabulary (n <= V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle


@dataclass(frozen=True)
class CutToVocabulary:
    """Forward hook of an lm_head: its [..., V] output becomes [..., vocab_size]."""

    vocab_size: int

    def __call__(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        if hasattr(output, "full_tensor"):  # tensor-parallel logits, sharded on V: gather, as verl does next
            output = output.full_tensor()
        return output[..., : self.vocab_size]


def lm_head_rows(model: torch.nn.Module) -> int:
    """V: rows of the model's output embedding (its logits' width), from the layer or else the HF config."""
    head = model.get_output_embeddings()
    rows = getattr(head, "out_features", None) or getattr(getattr(head, "module", None), "out_features", None)
    return int(rows if rows is not None else model.config.vocab_size)


def cut_padded_rows(model: torch.nn.Module, vocab_size: int) -> RemovableHandle | None:
    """Hook `model`'s lm_head so its logits keep only the first `vocab_size` rows.

    Args:
        model: an HF causal LM, possibly wrapped (FSDP, PEFT): anything with
            ``get_output_embeddings()``.
        vocab_size: n = len(tokenizer), the ids the rollout can sample.

    Returns:
        The hook's handle, or None when the model has no padded rows (V <= n): then nothing changes.
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1 (len(tokenizer)), got {vocab_size}")
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embedding (get_output_embeddings() is None): no lm_head to cut")
    rows = lm_head_rows(model)
    if rows <= vocab_size:
        return None
    return head.register_forward_hook(CutToVocabulary(vocab_size))


def tokenizer_vocab_size(model_config: Any) -> int | None:
    """n = len(tokenizer) of a verl `HFModelConfig` (what verl's vLLM rollout cuts to); None when it loaded no tokenizer."""
    tokenizer = model_config.get("tokenizer", None) if hasattr(model_config, "get") else getattr(model_config, "tokenizer", None)
    return len(tokenizer) if tokenizer is not None else None
