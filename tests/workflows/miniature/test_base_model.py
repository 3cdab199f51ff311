"""The miniature's base model: training batches, a tiny training run, checkpoint round trip, grading."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, Qwen2ForCausalLM

from sparse_rlvr.workflows.miniature.base_model import BaseModelConfig, build_model, train_base, training_batch
from sparse_rlvr.workflows.miniature.evaluate import accuracy, grade, sample_responses
from sparse_rlvr.workflows.miniature.task import Problem, answer, make_problems, prompt_string, response_text
from sparse_rlvr.workflows.tiny_models import tiny_tokenizer

TINY = dict(num_layers=1, intermediate_size=64, batch_size=16, lr=1e-2, warmup_steps=2)


@pytest.fixture(scope="module")
def tiny_run():
    seen = []
    result = train_base(BaseModelConfig(steps=40, **TINY), progress=lambda s, n, loss: seen.append((s, n, loss)))
    return result, seen


def test_config_refuses_a_head_dim_below_32():
    with pytest.raises(ValueError, match="head_dim >= 32"):
        BaseModelConfig(hidden_size=64, num_heads=4)
    with pytest.raises(ValueError, match="wrong_share"):
        BaseModelConfig(wrong_share=1.5)
    config = build_model(BaseModelConfig(hidden_size=64, num_heads=2), tiny_tokenizer()).config
    assert config.head_dim == 32 and config.num_attention_heads == 2


def test_training_batch_supervises_the_response_and_eos_only():
    tokenizer = tiny_tokenizer()
    problems = [Problem((3, 4, 5), ("+", "*")), Problem((2, 3, 4, 5), ("*", "+", "*"))]
    ids, mask, labels = training_batch(problems, [False, True], tokenizer)
    for b, (p, strategy) in enumerate(zip(problems, ["precedence", "left_to_right"])):
        target = labels[b][labels[b] != -100].tolist()
        assert tokenizer.decode(target) == response_text(p, strategy) + tokenizer.eos_token
        n = int(mask[b].sum())
        assert tokenizer.decode(ids[b, :n]) == prompt_string(p, tokenizer) + response_text(p, strategy) + "<|im_end|>"
        assert (labels[b, n:] == -100).all()


def test_tiny_training_lowers_the_loss_and_reports_progress(tiny_run):
    result, seen = tiny_run
    assert [s for s, _, _ in seen] == list(range(1, 41)) and all(n == 40 for _, n, _ in seen)
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    assert result.wall_s > 0


def test_training_is_deterministic_given_the_seed():
    a = train_base(BaseModelConfig(steps=3, **TINY))
    b = train_base(BaseModelConfig(steps=3, **TINY))
    c = train_base(BaseModelConfig(steps=3, seed=1, **TINY))
    assert a.losses == b.losses and a.losses != c.losses
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_checkpoint_reloads_with_identical_logits(tiny_run, tmp_path):
    result, _ = tiny_run
    path = result.save(tmp_path / "base")
    model = Qwen2ForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = prompt_string(Problem((3, 4, 5), ("+", "*")), tokenizer) + "4*5=0;"
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    assert ids[0].tolist() == result.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, result.model(ids).logits, rtol=0, atol=0)


def test_grade_counts_correct_and_fork_answers():
    problems = make_problems(60, seed=5, split="test")
    right = grade([response_text(p) for p in problems], problems)
    assert (right.overall, right.fork_disagree, right.formatted, right.n) == (1.0, 1.0, 1.0, 60)
    wrong = grade([response_text(p, "left_to_right") for p in problems], problems)
    agree = sum(answer(p) == answer(p, "left_to_right") for p in problems)
    assert wrong.overall == agree / 60 and wrong.fork_disagree == 0.0 and wrong.n_disagree == 60 - agree
    unformatted = grade(["4*5=0;3+0=3;"] * 60, problems)
    assert unformatted.formatted == 0.0 and unformatted.overall == 0.0
    with pytest.raises(ValueError, match="one response per problem"):
        grade(["x"], problems)


def test_sampling_is_seeded_and_graded(tiny_run):
    result, _ = tiny_run
    problems = make_problems(12, seed=0, split="test")
    threads = torch.get_num_threads()
    texts = sample_responses(result.model, result.tokenizer, problems, seed=3)
    assert len(texts) == 12 and all(len(t) <= 40 for t in texts)
    assert accuracy(result.model, result.tokenizer, problems, seed=3) == grade(texts, problems)  # same seed, same samples
    assert torch.get_num_threads() == threads  # one_thread() restores the caller's setting
