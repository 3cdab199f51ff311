"""The miniature's parquet is what verl's own RLHFDataset reads, fork positions included."""

from __future__ import annotations

from sparse_rlvr.workflows.miniature.task import (
    DATA_SOURCE, answer, fork_token_positions, make_problems, prompt_string, rl_rows, write_parquet,
)
from sparse_rlvr.workflows.tiny_models import tiny_tokenizer


def test_verls_rlhf_dataset_loads_the_rows(tmp_path):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    tokenizer = tiny_tokenizer()
    problems = make_problems(6, seed=2, split="test")
    path = write_parquet(rl_rows(problems, tokenizer, "test"), tmp_path / "test.parquet")
    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 64, "filter_overlong_prompts": True,
                               "filter_overlong_prompts_workers": 1, "truncation": "error", "return_raw_chat": True,
                               "cache_dir": str(tmp_path / "cache")})
    dataset = RLHFDataset(str(path), tokenizer, config)
    assert len(dataset) == 6
    for i, p in enumerate(problems):
        item = dataset[i]
        assert item["data_source"] == DATA_SOURCE
        assert item["reward_model"] == {"style": "rule", "ground_truth": str(answer(p))}
        assert list(item["extra_info"]["fork_positions"]) == fork_token_positions(p, tokenizer)
        rendered = tokenizer.apply_chat_template(item["raw_prompt"], tokenize=False, add_generation_prompt=True)
        assert rendered == prompt_string(p, tokenizer)
    assert list(collate_fn([dataset[i] for i in range(6)])["data_source"]) == [DATA_SOURCE] * 6
