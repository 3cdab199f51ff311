"""Tiny causal LMs and a character tokenizer built in code, for tests, demos and CPU recipes.

No hub is needed: everything is made from a fixed character vocabulary and a seeded Qwen2
config, in well under a second. The model's embedding has a few padded rows beyond the
tokenizer's vocabulary, like Qwen's real checkpoints (152,064 rows for 151,665 tokens), so
code that must respect the tokenizer's vocabulary size is exercised by every test.
"""

from __future__ import annotations

import copy
import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHARACTERS = list(string.digits + string.ascii_letters + string.punctuation + " \n")
PADDED_ROWS = 5
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_level(character: str) -> str:
    """The character as byte-level BPE spells it (space -> 'Ġ', newline -> 'Ċ'), as Qwen's vocabulary does."""
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(character)[0][0]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level byte-level-BPE tokenizer with Qwen's special tokens and chat template.

    Byte-level like Qwen's, so that transformers' Qwen2Tokenizer, which AutoTokenizer picks for a
    saved qwen2 model directory, rebuilds it with the same behaviour.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + [_byte_level(c) for c in CHARACTERS])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


VLLM_CPU_HEADS = {"num_attention_heads": 2, "num_key_value_heads": 1}
"""Attention heads of a tiny model vLLM's CPU backend can run: head_dim 64 / 2 = 32 (it has no kernel for 16)."""


def tiny_config(
    vocab_size: int, hidden_size: int = 64, num_layers: int = 2, padded_rows: int = PADDED_ROWS, **overrides
) -> Qwen2Config:
    """A Qwen2 config small enough to run a training step on one CPU core in milliseconds.

    The embedding and lm_head get `vocab_size` + `padded_rows` rows (0: exactly the tokenizer's,
    for comparisons where padded rows would legitimately differ, e.g. against plain verl).
    `overrides` set any other Qwen2Config field (e.g. tie_word_embeddings=False).
    """
    if padded_rows < 0:
        raise ValueError(f"padded_rows must be >= 0, got {padded_rows}")
    settings = dict(
        vocab_size=vocab_size + padded_rows,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=0.3,  # peaked next-token distributions, like a trained LM (0.02 gives ~uniform)
        bos_token_id=None,
        eos_token_id=SPECIAL_TOKENS.index("<|im_end|>"),
        pad_token_id=SPECIAL_TOKENS.index("<|endoftext|>"),
    )
    return Qwen2Config(**(settings | overrides))


def tiny_model(seed: int = 0, vocab_size: int | None = None, **config_kwargs) -> Qwen2ForCausalLM:
    """A randomly initialised tiny Qwen2 causal LM; the same seed gives the same weights."""
    vocab_size = vocab_size or len(tiny_tokenizer())
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Qwen2ForCausalLM(tiny_config(vocab_size, **config_kwargs))
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def tiny_pair(
    seed: int = 0, shift: float = 0.2, **config_kwargs
) -> tuple[Qwen2ForCausalLM, Qwen2ForCausalLM, PreTrainedTokenizerFast]:
    """(base, policy, tokenizer): same tokenizer and architecture, different weights.

    The policy is the base with seeded Gaussian noise of scale `shift` added to its final norm
    and last MLP, so the two next-token distributions differ a little everywhere; `shift=0`
    gives identical weights. `config_kwargs` go to tiny_config (e.g. max_position_embeddings).
    """
    tokenizer = tiny_tokenizer()
    base = tiny_model(seed, len(tokenizer), **config_kwargs)
    policy = copy.deepcopy(base)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if name.startswith("model.norm") or ".layers.1.mlp." in name:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(shift * noise * param.detach().abs().mean())
    return base, policy, tokenizer


def save_checkpoint(model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> Path:
    """Write a model and its tokenizer as one Hugging Face directory that from_pretrained loads."""
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def save_tiny_model(out_dir: str | Path, seed: int = 0, **config_kwargs) -> Path:
    """Write a tiny model and its tokenizer as a Hugging Face directory."""
    tokenizer = tiny_tokenizer()
    return save_checkpoint(tiny_model(seed, len(tokenizer), **config_kwargs), tokenizer, out_dir)
