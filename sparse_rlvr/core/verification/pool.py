"""A pool of kill-able worker processes that check answers under a hard wall-clock deadline.

Why not ``ProcessPoolExecutor``: it cannot kill one stuck task. sympy can spin in C code for
ever (power towers, huge factorials) where no signal or exception reaches it; here the worker
that passes its deadline is SIGKILLed and replaced, and the answer comes back as ``timeout``.

Workers come from the ``forkserver`` context (safe from threads, asyncio and Ray workers: no
fork of a threaded parent) with math-verify preloaded and warmed (:mod:`.warmup`) so a
replacement starts warm in well under a second. A caller checks out one idle worker per answer, so any number of threads can share the
pool; :meth:`VerifierPool.map` fans a batch out over all workers.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

Outcome = tuple[Literal["ok", "timeout", "error"], Any]
# The forkserver imports these once; warmup grades a spread of shapes so every forked worker
# starts with latex2sympy's parser tables and sympy's caches warm (see warmup.py).
_PRELOAD = ["sympy", "math_verify", "sparse_rlvr.core.verification.equivalence", "sparse_rlvr.core.verification.warmup"]
_MEMORY_LIMIT_BYTES = 4 * 1024**3
_WARMUP = [("\\frac{1}{2}", "x^2"), ("\\frac{1}{7}", "0.25"), ("(2,\\infty)", "x>3"), ("1,2", "\\{2,3\\}"),
           ("50\\%", "0.4"), ("\\sqrt{2}", "2\\sin x"), ("\\frac{1}{3!}", "\\binom{4}{2}"), ("2+3i", "e^{\\pi}")]


def _limit_memory() -> None:
    """Cap the worker's address space so a huge expansion fails with MemoryError, not OOM."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass


def _serve(conn: Any) -> None:
    """Worker loop: warm up sympy, say ready, then answer (gold, pred, tol, options) tasks."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _limit_memory()
    from sparse_rlvr.core.verification.equivalence import answers_equal

    if "sparse_rlvr.core.verification.warmup" not in sys.modules:  # forked from a cold forkserver
        for gold, pred in _WARMUP:  # first use of each sympy code path is slow: pay it before "ready"
            answers_equal(gold, pred)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            conn.send(("ok", bool(answers_equal(*task))))
        except BaseException as error:  # math-verify's TimeoutException is a BaseException
            conn.send(("error", f"{type(error).__name__}: {error}"[:300]))


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="sparse_rlvr-verifier")
        self.proc.start()
        child.close()
        self.ready = False

    def wait_ready(self, timeout: float) -> bool:
        """Block until the worker has imported and warmed up (not counted in answer deadlines)."""
        if not self.ready and self.conn.poll(timeout):
            self.ready = self.conn.recv() == "ready"
        return self.ready

    def kill(self) -> None:
        """SIGKILL the process (it may be stuck in C code) and reap it."""
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class VerifierPool:
    """``num_workers`` verifier processes; each answer gets ``deadline_s`` of wall-clock time."""

    def __init__(self, num_workers: int = 2, startup_timeout_s: float = 120.0) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.num_workers = num_workers
        self.startup_timeout_s = startup_timeout_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid: int | None = None

    def _context(self) -> Any:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx

    def _ensure_started(self) -> None:
        """Start the workers on first use in this process (a forked or unpickled copy restarts)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._idle, self._all, self._pid = queue.Queue(), [], os.getpid()
            for _ in range(self.num_workers):
                self._add_worker()
            atexit.register(self.close)

    def _add_worker(self) -> None:
        worker = _Worker(self._context())
        self._all.append(worker)
        self._idle.put(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            self._add_worker()

    def run(self, task: tuple, deadline_s: float) -> Outcome:
        """Check one (gold, pred, tolerance, options) task; ``timeout`` past ``deadline_s``."""
        self._ensure_started()
        worker = self._idle.get()
        try:
            if not worker.wait_ready(self.startup_timeout_s):
                self._replace(worker)
                return "error", "verifier worker did not start"
            worker.conn.send(task)
            if not worker.conn.poll(deadline_s):
                self._replace(worker)
                return "timeout", None
            outcome = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as error:  # worker died (e.g. out of memory)
            self._replace(worker)
            return "error", f"verifier worker died: {error!r}"
        self._idle.put(worker)
        return outcome

    def map(self, tasks: Sequence[tuple], deadline_s: float) -> list[Outcome]:
        """Check many tasks in parallel across the workers, results in input order."""
        if not tasks:
            return []
        self._ensure_started()
        with ThreadPoolExecutor(max_workers=self.num_workers) as executor:
            return list(executor.map(lambda t: self.run(t, deadline_s), tasks))

    def close(self) -> None:
        """Stop every worker of this process's pool."""
        with self._lock:
            if self._pid != os.getpid():
                return
            for worker in self._all:
                worker.kill()
            self._all, self._pid = [], None

    def __getstate__(self) -> dict:
        """Pickle only the settings: processes and pipes are recreated where it is unpickled."""
        return {"num_workers": self.num_workers, "startup_timeout_s": self.startup_timeout_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


_SHARED: dict[int, VerifierPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(num_workers: int) -> VerifierPool:
    """The process-wide pool with ``num_workers`` workers (created on first use)."""
    with _SHARED_LOCK:
        if num_workers not in _SHARED:
            _SHARED[num_workers] = VerifierPool(num_workers)
        return _SHARED[num_workers]
