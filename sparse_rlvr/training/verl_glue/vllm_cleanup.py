"""Stop a run's vLLM engine processes and remove the shared memory and sockets a killed run leaves behind.

Why (docs/notes/vllm_cpu_lane.md §5): vLLM's ``mp`` executor keeps its message queues in
``/dev/shm/psm_*`` segments (160 + 240 MB for one tiny engine), verl's weight sync puts a 2 GiB bucket
in ``/dev/shm/verl_weights_*`` and binds ``/tmp/rl-colocate-zmq-*.sock``. Their owners remove them on a
clean exit, but a SIGKILLed owner (Ray kills an exiting worker's direct children with SIGKILL) leaves
``VLLM::EngineCore`` / ``VLLM::Worker`` running and holding the segments, and a SIGKILLed engine never
unlinks them. On a small machine a few such runs fill /dev/shm.

How a run's engines are found: the launcher puts ``run_env(run_id)`` in the environment of the
driver and of every Ray worker; vLLM's processes inherit it. A process is stopped only if it has our
uid, the exact entry ``SPARSE_RLVR_RUN_ID=<run_id>`` in ``/proc/<pid>/environ`` and a vLLM process
title (``VLLM::EngineCore``, ``VLLM::Worker``, ``VLLM::Worker_TP0``, ...). ``run_env`` also sets
``SPT_NOENV=1``: without it, the ``setproctitle`` call with which vLLM names its processes overwrites
the start of ``/proc/<pid>/environ`` (seen: 37 of 51 entries zeroed, the run id among them).

What counts as orphaned: a segment or socket file of our uid, older than ``min_age_s``, that no live
process maps or holds open (segments) or that no live socket is bound to (sockets, ``/proc/net/unix``).
A live run's files always are, so the sweeps are safe next to other runs on the same machine; only
processes in another PID or network namespace sharing /dev/shm or /tmp would be invisible.

Usage (``launch.train``): ``cleanup_after_run(run_id)`` before ``run_ppo`` and in a ``finally`` after it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

RUN_ID_VAR = "SPARSE_RLVR_RUN_ID"
SHM_DIR = Path("/dev/shm")
SEGMENT_PATTERNS = ("psm_*", "verl_weights_*")
SOCKET_DIR = Path("/tmp")
SOCKET_PATTERNS = ("rl-colocate-zmq-*.sock",)
_DEFAULT_TITLE_PREFIX = "VLLM"  # vllm.envs.VLLM_PROCESS_NAME_PREFIX; a process's own environ may override it


@dataclasses.dataclass
class CleanupReport:
    """What one cleanup did: engine pids stopped, files unlinked, engines whose run id could not be read."""

    stopped_pids: list[int] = dataclasses.field(default_factory=list)
    removed_segments: list[str] = dataclasses.field(default_factory=list)
    removed_sockets: list[str] = dataclasses.field(default_factory=list)
    unreadable_engines: list[int] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (f"stopped {len(self.stopped_pids)} vLLM engine process(es) {self.stopped_pids}, removed "
                f"{len(self.removed_segments)} shm segment(s) {self.removed_segments} and "
                f"{len(self.removed_sockets)} socket file(s) {self.removed_sockets}")


def new_run_id() -> str:
    """A fresh run id (32 hex digits): unique per launch, so one run never stops another's engines."""
    return uuid.uuid4().hex


def run_env(run_id: str) -> dict[str, str]:
    """Environment for the driver and every Ray worker: the run id, and SPT_NOENV so vLLM's
    process titles leave /proc/<pid>/environ (where the run id is read) intact."""
    return {RUN_ID_VAR: run_id, "SPT_NOENV": "1"}


def _pids() -> Iterator[int]:
    """Pids of the live processes this PID namespace shows."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _read(path: str) -> bytes | None:
    """Bytes of a /proc file, or None when the process is gone or not ours to read."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:  # FileNotFoundError, PermissionError, ProcessLookupError (ESRCH)
        return None


def _owned_by_us(pid: int) -> bool:
    """The process runs as our uid."""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def _environ(pid: int) -> list[bytes] | None:
    """The process's initial environment entries (``KEY=value``), or None if unreadable or empty (a zombie)."""
    raw = _read(f"/proc/{pid}/environ")
    return raw.split(b"\0") if raw else None


def _vllm_title(pid: int, environ: list[bytes]) -> bool:
    """The process carries a vLLM process title (``<prefix>::Name``), in its cmdline or its comm."""
    prefix = _DEFAULT_TITLE_PREFIX.encode()
    for entry in environ:
        if entry.startswith(b"VLLM_PROCESS_NAME_PREFIX="):
            prefix = entry.split(b"=", 1)[1]
    marker = prefix + b"::"
    arg0 = (_read(f"/proc/{pid}/cmdline") or b"").split(b"\0", 1)[0]
    comm = (_read(f"/proc/{pid}/comm") or b"").strip()
    return arg0.startswith(marker) or comm.startswith(marker)


def _is_run_engine(pid: int, run_id: str) -> bool:
    """Our uid, this run's exact id in the environment, and a vLLM title: never the name alone."""
    if not _owned_by_us(pid):
        return False
    environ = _environ(pid)
    return bool(environ) and f"{RUN_ID_VAR}={run_id}".encode() in environ and _vllm_title(pid, environ)


def _unreadable_engines() -> list[int]:
    """Our vLLM processes whose environ was overwritten by setproctitle (run started without SPT_NOENV)."""
    found = []
    for pid in _pids():
        environ = _environ(pid) if _owned_by_us(pid) else None
        if environ and environ[0] == b"" and _vllm_title(pid, environ):  # a real environ has no empty entry
            found.append(pid)
    return found


def _open_pidfd(pid: int, run_id: str) -> int | None:
    """A pidfd on the process if it is still this run's engine once pinned (guards against pid reuse)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    if _is_run_engine(pid, run_id):
        return pidfd
    os.close(pidfd)
    return None


def _signal(pidfds: dict[int, int], signum: int) -> None:
    """Send signum through each pidfd (a process that already exited is skipped)."""
    for pidfd in pidfds.values():
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            pass


def _wait_exit(pidfds: dict[int, int], timeout_s: float) -> dict[int, int]:
    """Wait until every process exited (its pidfd turns readable) or timeout_s passed; returns the survivors."""
    alive = dict(pidfds)
    deadline = time.monotonic() + timeout_s
    while alive:
        left = max(deadline - time.monotonic(), 0.0)
        poller = select.poll()  # not select.select: a driver with Ray open may hold fds above FD_SETSIZE
        for fd in alive.values():
            poller.register(fd, select.POLLIN)
        exited = {fd for fd, _ in poller.poll(left * 1000)}
        alive = {pid: fd for pid, fd in alive.items() if fd not in exited}
        if left == 0.0:
            break
    return alive


def _parent(pid: int) -> int | None:
    """The parent pid (field 4 of /proc/<pid>/stat), or None if the process is gone."""
    stat = _read(f"/proc/{pid}/stat")
    return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else None


def stop_run_engines(run_id: str, grace_s: float = 10.0) -> list[int]:
    """SIGTERM this run's vLLM engine processes, SIGKILL those alive after grace_s (+1 s); returns their pids.

    The top ones (an EngineCore, or a Worker whose EngineCore is gone) get SIGTERM first, so that vLLM
    stops its Workers in order; the rest get it once those exited. Their segments may outlive even a
    graceful exit (seen both ways), so ``remove_orphaned_segments`` has to run afterwards
    (``cleanup_after_run`` does)."""
    if not run_id:
        raise ValueError("run_id must be non-empty (an empty id would match every run started without one)")
    pidfds = {pid: fd for pid in _pids() if (fd := _open_pidfd(pid, run_id)) is not None}
    deadline = time.monotonic() + grace_s
    try:
        tops = {pid: fd for pid, fd in pidfds.items() if _parent(pid) not in pidfds}
        _signal(tops, signal.SIGTERM)
        _wait_exit(tops, grace_s)
        rest = _wait_exit(pidfds, 0.0)
        _signal(rest, signal.SIGTERM)
        survivors = _wait_exit(rest, max(deadline - time.monotonic(), 1.0))
        if survivors:
            logger.warning("vLLM engine processes %s of run %s still ran %.0f s after SIGTERM: SIGKILL",
                           sorted(survivors), run_id, grace_s)
            _signal(survivors, signal.SIGKILL)
            _wait_exit(survivors, 5.0)
    finally:
        for fd in pidfds.values():
            os.close(fd)
    return sorted(pidfds)


def _files_in_use(directory: Path) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of every file under directory that a live process maps or holds open.

    Only processes we may inspect are seen; others' files are out of our reach anyway (/dev/shm and
    /tmp are sticky, and we only unlink our own)."""
    prefix = os.path.realpath(directory) + "/"
    in_use: set[tuple[int, int]] = set()
    for pid in _pids():
        for line in (_read(f"/proc/{pid}/maps") or b"").decode(errors="replace").splitlines():
            fields = line.split(None, 5)  # address perms offset dev inode pathname
            if len(fields) == 6 and fields[5].startswith(prefix):
                major, minor = fields[3].split(":")
                in_use.add((os.makedev(int(major, 16), int(minor, 16)), int(fields[4])))
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                    stat = os.stat(f"/proc/{pid}/fd/{fd}")
                    in_use.add((stat.st_dev, stat.st_ino))
            except OSError:
                continue
    return in_use


def _bound_socket_paths() -> set[str]:
    """Paths of the unix sockets bound in this network namespace (``/proc/net/unix``)."""
    paths = set()
    for line in (_read("/proc/net/unix") or b"").decode(errors="replace").splitlines()[1:]:
        fields = line.split(None, 7)  # Num RefCount Protocol Flags Type St Inode Path
        if len(fields) == 8:
            paths.add(fields[7])
    return paths


def _stale_candidates(directory: Path, patterns: tuple[str, ...],
                      min_age_s: float) -> Iterator[tuple[Path, os.stat_result]]:
    """Our uid's files in directory matching patterns, last modified at least min_age_s ago."""
    now, uid = time.time(), os.getuid()
    for path in sorted({p for pattern in patterns for p in directory.glob(pattern)}):
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        if stat.st_uid == uid and now - stat.st_mtime >= min_age_s:
            yield path, stat


def _unlink(path: Path) -> bool:
    """Unlink path; False if someone else (a resource tracker, the owner) already did."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def remove_orphaned_segments(min_age_s: float = 5.0, shm_dir: Path = SHM_DIR,
                             patterns: tuple[str, ...] = SEGMENT_PATTERNS) -> list[str]:
    """Unlink our uid's psm_*/verl_weights_* segments that no live process maps or holds open and
    that are at least min_age_s old (a segment just created may not be mapped yet); returns their names."""
    in_use = _files_in_use(shm_dir)
    return [path.name for path, stat in _stale_candidates(shm_dir, patterns, min_age_s)
            if (stat.st_dev, stat.st_ino) not in in_use and _unlink(path)]


def remove_stale_sockets(min_age_s: float = 5.0, socket_dir: Path = SOCKET_DIR,
                         patterns: tuple[str, ...] = SOCKET_PATTERNS) -> list[str]:
    """Unlink our uid's verl weight-sync socket files that no live socket is bound to; returns their names.

    Not selected by Ray job id: verl names them ``rl-colocate-zmq-<job>-...`` but every fresh local Ray
    cluster numbers its first job ``01000000``, so the job id does not tell two runs apart."""
    bound = _bound_socket_paths()
    return [path.name for path, _ in _stale_candidates(socket_dir, patterns, min_age_s)
            if str(path) not in bound and os.path.realpath(path) not in bound and _unlink(path)]


def cleanup_after_run(run_id: str, grace_s: float = 10.0, min_age_s: float = 5.0) -> CleanupReport:
    """Stop this run's vLLM engines, then sweep orphaned segments and sockets (of any earlier run too).

    Call it in a ``finally`` around ``run_ppo`` and once before the run starts (then it only sweeps
    what a SIGKILLed earlier driver left). Never raises for a file or process that vanished meanwhile."""
    report = CleanupReport(stopped_pids=stop_run_engines(run_id, grace_s))
    report.removed_segments = remove_orphaned_segments(min_age_s)
    report.removed_sockets = remove_stale_sockets(min_age_s)
    report.unreadable_engines = _unreadable_engines()
    if report.stopped_pids or report.removed_segments or report.removed_sockets:
        logger.warning("sparse_rlvr vLLM cleanup (run %s): %s", run_id, report.summary())
    if report.unreadable_engines:
        logger.warning("vLLM processes %s have an overwritten /proc/<pid>/environ, so their run is unknown and "
                       "they were left alone; start runs with run_env(run_id) (it sets SPT_NOENV=1)",
                       report.unreadable_engines)
    return report
