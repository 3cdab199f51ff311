"""Gather requests that arrive close together into batches, served one batch at a time by a thread.

The ``hf`` rollout's server receives each sample as its own call (verl's agent loop sends all of a
step's samples at once). A batch opens with the first waiting request and closes when no new
request came for ``quiet_s``, when it has waited ``max_wait_s``, or when it holds ``max_batch``
requests; ``serve`` then runs it on this batcher's thread. The thread belongs to no event loop,
so callers on any loop (Ray's actor loop, ``asyncio.run`` in tests) await the same batcher.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class RequestBatcher(Generic[Item]):
    """``submit(item)`` returns a future; ``serve(items)`` returns one result per item, in order."""

    def __init__(self, serve: Callable[[list[Item]], list[Any]], *, quiet_s: float = 0.02, max_wait_s: float = 0.5,
                 max_batch: int = 512) -> None:
        if quiet_s < 0 or max_wait_s < quiet_s or max_batch < 1:
            raise ValueError(f"need 0 <= quiet_s <= max_wait_s and max_batch >= 1, got {quiet_s}, {max_wait_s}, {max_batch}")
        self._serve = serve
        self.quiet_s, self.max_wait_s, self.max_batch = quiet_s, max_wait_s, max_batch
        self._waiting: list[tuple[Item, concurrent.futures.Future]] = []
        self._arrived = threading.Condition()
        self._last_arrival = 0.0
        self.batch_sizes: list[int] = []
        """Size of every batch served (tests and the benchmark read it)."""
        self._thread = threading.Thread(target=self._loop, name="hf-rollout-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._arrived:
            self._waiting.append((item, future))
            self._last_arrival = time.monotonic()
            self._arrived.notify()
        return future

    def drain(self) -> list[tuple[Item, concurrent.futures.Future]]:
        """Take every waiting request out of the queue (an abort answers them itself)."""
        with self._arrived:
            taken, self._waiting = self._waiting, []
        return taken

    def _next_batch(self) -> list[tuple[Item, concurrent.futures.Future]]:
        with self._arrived:
            while not self._waiting:
                self._arrived.wait()
            opened = time.monotonic()
            while len(self._waiting) < self.max_batch:
                now = time.monotonic()
                quiet_until = self._last_arrival + self.quiet_s
                if now >= quiet_until or now >= opened + self.max_wait_s:
                    break
                self._arrived.wait(min(quiet_until, opened + self.max_wait_s) - now)
                if not self._waiting:  # drained by an abort while we waited
                    return []
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
        return [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]  # drop cancelled

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = self._serve([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} requests got {len(results)} results")
            except BaseException as error:  # answer every caller; the thread keeps serving
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)


def answer(future: concurrent.futures.Future, result: Any) -> None:
    """Resolve a future taken with ``drain`` (unless its caller cancelled it)."""
    if future.set_running_or_notify_cancel():
        future.set_result(result)
