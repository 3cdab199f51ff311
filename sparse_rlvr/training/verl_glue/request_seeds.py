"""Per-request sampling seeds that depend on what a request is, not on when it arrived.

Both CPU rollouts (``hf`` and the vLLM CPU lane) seed every request by (run seed, weight
version, prompt, k-th request for that prompt in that version). Concurrent requests reach a
server in any order and are batched in any way; seeding each from what it is makes a run's
rollouts the same every time, so two runs (plain GRPO and s = 0, an ablation's arms) sample alike.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Hashable, Sequence


class RequestSeeds:
    """Hands out one 63-bit seed per request, keyed by (weight version, prompt) and a per-key counter."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.seen: collections.Counter = collections.Counter()
        self.version: Hashable = None

    def next(self, weight_version: Hashable, prompt_ids: Sequence[int]) -> int:
        """The seed of the next request for this prompt under this weight version (a new version forgets the old counts)."""
        if weight_version != self.version:
            self.seen.clear()
            self.version = weight_version
        key = (weight_version, tuple(int(i) for i in prompt_ids))
        k = self.seen[key]
        self.seen[key] += 1
        digest = hashlib.sha256(repr((self.seed, *key, k)).encode()).digest()
        return int.from_bytes(digest[:8], "little") >> 1
