"""Shared fixtures: tiny models and tokenizer built in code (no hub), fresh for every test."""

from __future__ import annotations

import pytest

from sparse_rlvr.tiny import tiny_pair as build_tiny_pair


@pytest.fixture
def tiny_pair():
    """(base, policy, tokenizer): same tokenizer, different weights; built in ~0.05 s."""
    return build_tiny_pair(seed=0)
