"""Load a base/policy pair and check that they share one tokenizer before any work."""

from __future__ import annotations

from typing import Any

import torch

from sparse_rlvr.core.errors import UserError


def pick_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is bf16 on GPUs and float32 on CPU (bf16 matmuls are slow on most CPUs)."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def load_model(path: str, dtype: torch.dtype, device: torch.device) -> Any:
    """A causal LM in eval mode on `device`."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # ours is the progress bar that matters
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()


def load_tokenizer(path: str) -> Any:
    """The checkpoint's tokenizer; a directory without one, or a hub id that cannot be fetched, is a UserError."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as error:  # transformers' "not a local folder and not a valid model identifier", no network, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"could not load a tokenizer from {path!r} ({first}); give a checkpoint directory with "
                        "config.json and tokenizer files, or a hub id this machine can download") from error


def check_same_tokenizer(base: Any, policy: Any, base_name: str, policy_name: str) -> None:
    """Raise before any work if the two tokenizers would map text to different ids."""
    if base.get_vocab() != policy.get_vocab():
        only_base = len(set(base.get_vocab()) - set(policy.get_vocab()))
        only_policy = len(set(policy.get_vocab()) - set(base.get_vocab()))
        raise UserError(
            f"{base_name} and {policy_name} have different vocabularies ({len(base)} vs {len(policy)} "
            f"tokens; {only_base} only in the base, {only_policy} only in the policy): token-level "
            "divergence needs both models to share one tokenizer"
        )
    for attribute in ("eos_token_id", "bos_token_id", "pad_token_id"):
        if getattr(base, attribute) != getattr(policy, attribute):
            raise UserError(
                f"{base_name} and {policy_name} disagree on {attribute} ({getattr(base, attribute)} vs "
                f"{getattr(policy, attribute)}); use checkpoints saved with the same tokenizer"
            )


def context_length(model: Any) -> int:
    """The longest sequence the model was configured for."""
    return int(getattr(model.config, "max_position_embeddings", 1 << 30))


class TokenTexts:
    """Token id -> text, decoding each distinct id once (tokenizer.decode is slow per call)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, ids: list[int]) -> list[str]:
        for token in set(ids) - self.cache.keys():
            self.cache[token] = self.tokenizer.decode([token])
        return [self.cache[t] for t in ids]
