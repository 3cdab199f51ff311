"""Test hooks: points where a test makes a run die on purpose. Never set in real use.

`SPARSE_RLVR_TEST_KILL_AFTER_SHARDS=k` makes a resumable run (`shift`, `cross-sample`) SIGKILL
itself right after writing its k-th shard, so kill-and-resume tests stop a run at a point they
choose instead of racing a poll loop against the run. Unset, the hook is one environment lookup
per shard.
"""

from __future__ import annotations

import os
import signal

KILL_AFTER_SHARDS = "SPARSE_RLVR_TEST_KILL_AFTER_SHARDS"


def kill_after_shard_test_hook(shards_written: int) -> None:
    """Test hook: SIGKILL this process once it has written `shards_written` >= k shards, if k is set."""
    limit = os.environ.get(KILL_AFTER_SHARDS)
    if limit is None:
        return
    if not limit.isdigit():
        raise ValueError(f"{KILL_AFTER_SHARDS} must be a shard count (a test hook), got {limit!r}; unset it for real runs")
    if shards_written >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
