"""The full-size base model lands in the accuracy band RL needs: format reliable, forks a coin flip."""

from __future__ import annotations

import pytest

from sparse_rlvr.workflows.miniature.base_model import BaseModelConfig, train_base
from sparse_rlvr.workflows.miniature.evaluate import accuracy
from sparse_rlvr.workflows.miniature.task import make_problems


@pytest.mark.slow
def test_default_base_model_is_unsure_only_at_the_forks():
    trained = train_base(BaseModelConfig())
    measured = accuracy(trained.model, trained.tokenizer, make_problems(400, seed=0, split="test"), seed=1)
    assert measured.formatted >= 0.97, measured
    assert 0.6 <= measured.overall <= 0.9, measured  # ~0.77 expected: plain prompts right, forks half right
    assert 0.3 <= measured.fork_disagree <= 0.7, measured  # ~0.5: the two strategies equally likely
