"""The tiny model pair and tokenizer every later test builds on."""

from __future__ import annotations

import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sparse_rlvr.workflows.tiny_models import PADDED_ROWS, save_tiny_model, tiny_model, tiny_pair, tiny_tokenizer


def test_pair_builds_fast_with_shared_tokenizer_and_different_weights():
    start = time.perf_counter()
    base, policy, tokenizer = tiny_pair()
    assert time.perf_counter() - start < 1.0  # "well under a second": every test builds its own
    same_seed_base = tiny_pair()[0]
    assert base.config.vocab_size == policy.config.vocab_size == len(tokenizer) + PADDED_ROWS
    ids = torch.tensor([tokenizer("1+1=2")["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(base(ids).logits, policy(ids).logits)
        torch.testing.assert_close(base(ids).logits, same_seed_base(ids).logits)


def test_zero_shift_gives_identical_models():
    base, policy, _ = tiny_pair(shift=0.0)
    for (name, a), (_, b) in zip(base.named_parameters(), policy.named_parameters()):
        assert torch.equal(a, b), name


def test_tokenizer_round_trips_math_text_and_chat_template():
    tokenizer = tiny_tokenizer()
    text = "Solve 3x+4=19. Answer: \\boxed{5}"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "2+2?"}], add_generation_prompt=True, tokenize=False)
    assert prompt == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_seed_fixes_weights_without_touching_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b = tiny_model(seed=4), tiny_model(seed=4)
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_saved_directory_loads_with_auto_classes(tmp_path):
    path = save_tiny_model(tmp_path / "tiny", seed=1)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = "7*6 = 42.\nSo \\boxed{42}"
    assert tokenizer(text)["input_ids"] == tiny_tokenizer()(text)["input_ids"]  # AutoTokenizer picks Qwen2Tokenizer
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(seed=1)(ids).logits)
    assert tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False).startswith("<|im_start|>")


def test_padded_rows_can_be_chosen():
    """PADDED_ROWS by default, like real checkpoints; padded_rows=0 gives lm_head rows == the tokenizer's."""
    tokenizer = tiny_tokenizer()
    assert tiny_model().get_output_embeddings().out_features == len(tokenizer) + PADDED_ROWS
    assert tiny_model(padded_rows=0).config.vocab_size == len(tokenizer)
    assert tiny_model(padded_rows=2).get_output_embeddings().out_features == len(tokenizer) + 2
