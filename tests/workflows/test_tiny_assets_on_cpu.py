"""make-tiny: a model dir AutoModel/AutoTokenizer load, and data verl's own scorer grades."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from sparse_rlvr.workflows.tiny_assets import arithmetic_problem, make_tiny_assets


@pytest.mark.parametrize("seed", range(5))
def test_answers_are_the_expressions_value(seed):
    expression, answer = arithmetic_problem(random.Random(seed), steps=3)
    assert answer == eval(expression) and isinstance(answer, int)  # noqa: S307


def test_make_tiny_writes_what_the_recipes_read(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.utils.reward_score import default_compute_score

    out = make_tiny_assets(tmp_path, train_rows=8, test_rows=2)
    AutoModelForCausalLM.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    train = pd.read_parquet(out / "train.parquet")
    assert len(train) == 8 and len(pd.read_parquet(out / "test.parquet")) == 2
    row = train.iloc[0]
    assert set(row.keys()) >= {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    truth = row["reward_model"]["ground_truth"]
    assert default_compute_score(row["data_source"], f"so \\boxed{{{truth}}}", truth) == 1.0
    assert default_compute_score(row["data_source"], "\\boxed{12345}", truth) == 0.0
    prompt = tokenizer.apply_chat_template(list(row["prompt"]), add_generation_prompt=True, tokenize=False)
    assert row["prompt"][0]["content"] in prompt


def test_make_tiny_can_write_a_model_without_padded_rows(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    out = make_tiny_assets(tmp_path, train_rows=2, test_rows=1, warm_start_steps=0, padded_rows=0)
    assert AutoConfig.from_pretrained(out / "model").vocab_size == len(AutoTokenizer.from_pretrained(out / "model"))


def test_make_tiny_vllm_writes_a_model_cpu_vllm_can_run(tmp_path):
    """`make-tiny --vllm`: head_dim 32 (CPU vLLM's attention has no kernel for the default 16)."""
    from transformers import AutoConfig

    lane = make_tiny_assets(tmp_path / "lane", train_rows=2, test_rows=1, warm_start_steps=0, vllm_compatible=True)
    config = AutoConfig.from_pretrained(lane / "model")
    assert config.hidden_size // config.num_attention_heads == 32 and config.num_key_value_heads == 1
    default = AutoConfig.from_pretrained(make_tiny_assets(tmp_path / "plain", train_rows=2, test_rows=1, warm_start_steps=0) / "model")
    assert default.hidden_size // default.num_attention_heads == 16
