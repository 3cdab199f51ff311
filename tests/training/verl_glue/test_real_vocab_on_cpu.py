"""The lm_head hook that cuts padded vocabulary rows: what verl's actor computes from it is over the real rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from verl.utils.torch_functional import entropy_from_logits, logprobs_from_logits

from sparse_rlvr.training.verl_glue.real_vocab import cut_padded_rows, lm_head_rows, tokenizer_vocab_size
from sparse_rlvr.workflows.tiny_models import PADDED_ROWS, tiny_model, tiny_tokenizer

IDS = torch.tensor([[5, 9, 12, 30, 7, 41, 3, 18], [2, 3, 4, 5, 6, 7, 8, 9]])
N_REAL = len(tiny_tokenizer())


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_hooked_log_probs_and_entropy_are_over_the_real_rows():
    """verl's own logprobs_from_logits / entropy_from_logits on the hooked logits == float64 softmax over the first n rows."""
    model = tiny_model(seed=0).double()
    full = _logits(model)
    assert full.shape[-1] == N_REAL + PADDED_ROWS
    handle = cut_padded_rows(model, N_REAL)
    assert handle is not None
    cut = _logits(model)
    assert cut.shape == (*IDS.shape, N_REAL)
    torch.testing.assert_close(cut, full[..., :N_REAL], rtol=0, atol=0)

    labels = IDS.roll(-1, dims=1)
    reference = full[..., :N_REAL].log_softmax(-1)
    torch.testing.assert_close(logprobs_from_logits(cut, labels), reference.gather(-1, labels[..., None])[..., 0],
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(entropy_from_logits(cut), -(reference.exp() * reference).sum(-1), rtol=0, atol=1e-12)
    # teeth: the random padded rows carry real mass, so all-rows log-probs differ from the real-rows ones
    padded_mass = full.softmax(-1)[..., N_REAL:].sum(-1)
    assert padded_mass.max() > 1e-2
    assert (logprobs_from_logits(full, labels) - logprobs_from_logits(cut, labels)).abs().max() > 1e-2

    handle.remove()
    assert _logits(model).shape[-1] == N_REAL + PADDED_ROWS


def test_training_through_the_hook_leaves_padded_rows_without_gradient():
    """The cut rows take no part in the loss: the (tied) lm_head rows beyond the tokenizer get exactly zero gradient."""
    model = tiny_model(seed=0).train()
    cut_padded_rows(model, N_REAL)
    labels = IDS.roll(-1, dims=1)
    logprobs_from_logits(model(IDS).logits, labels).sum().backward()
    grad = model.get_output_embeddings().weight.grad
    assert grad[:N_REAL].abs().sum() > 0
    assert torch.count_nonzero(grad[N_REAL:]) == 0


def test_a_model_without_padded_rows_is_untouched():
    model = tiny_model(seed=0, padded_rows=0)
    assert lm_head_rows(model) == N_REAL
    before = _logits(model)
    assert cut_padded_rows(model, N_REAL) is None
    torch.testing.assert_close(_logits(model), before, rtol=0, atol=0)


def test_tokenizer_vocab_size_reads_verls_model_config():
    assert tokenizer_vocab_size(SimpleNamespace(tokenizer=tiny_tokenizer())) == N_REAL
    assert tokenizer_vocab_size({"tokenizer": tiny_tokenizer()}) == N_REAL
    assert tokenizer_vocab_size(SimpleNamespace(tokenizer=None)) is None


def test_token_shift_worker_hooks_its_engines_module():
    """TokenShiftWorker's per-engine step: verl's TrainingWorker keeps the tokenizer in model_config, the HF module in engine.module."""
    from sparse_rlvr.training.verl_glue.actor_worker import cut_to_tokenizer

    model = tiny_model(seed=0)
    worker = SimpleNamespace(model_config={"tokenizer": tiny_tokenizer()}, engine=SimpleNamespace(module=model))
    cut_to_tokenizer(worker, "actor")
    assert _logits(model).shape[-1] == N_REAL
    with pytest.raises(RuntimeError, match="load_tokenizer"):
        cut_to_tokenizer(SimpleNamespace(model_config={"tokenizer": None}, engine=worker.engine), "ref")
