"""Moved to `sparse_rlvr.core.decoding` (shared with `shift`); these names stay importable here for
benchmarks/cross_sample.py until it imports them from the core."""

from sparse_rlvr.core.decoding import IncrementalLM, left_pad  # noqa: F401
from sparse_rlvr.core.sampling import sample  # noqa: F401
