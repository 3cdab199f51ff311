"""Benchmark: token_divergence (compiled and eager paths) vs the straightforward formulation.

    .venv/bin/python benchmarks/divergence.py            # V = 151,936, N = 2,048, bf16, CPU
    .venv/bin/python benchmarks/divergence.py --device cuda --n 32768

The straightforward baseline upcasts both [N, V] tensors to float32, takes softmax of each,
the mixture, and two KLs against it (JS only). token_divergence computes JS, both KLs, both
entropies and the rank statistics, once through the compiled kernel and once on the eager path.
Each method runs in its own subprocess on identical seeded inputs; the compiled path's first
call (compile + run) is timed apart from a second, steady-state call. Peak memory is the
process's peak RSS (CPU; reset through /proc/self/clear_refs) or torch.cuda.max_memory_allocated
(CUDA) above what the inputs already use. On CUDA the compiled path's input bytes per second are
also given as a fraction of the device's copy bandwidth (bytes read + written by a large copy).
The roofline row is the machine's limit for any exact JS: a compiled kernel that reads both
inputs once and does only 2 exps + 1 log per element and three row sums (roofline_chunk); the
compiled core is reported as a fraction of it, from the same run.
Tokens per CPU-second (process time) are given too: on a shared machine they move less with
other processes' load than wall-clock tokens/s do. --threads fixes torch's thread count in every method.
Targets: compiled >= 15x the baseline's tokens/s on CPU (goal 25x); >= 50% of copy bandwidth on CUDA.

Measured (2-core VM with AVX-512, quiet: load 0.7; N = 1,024, V = 151,936, bf16, one run,
2026-12-02; tokens/s wall and per CPU-second):

    method            tok/s (per cpu-s)   first call
    straightforward     129 (72)
    eager               854 (429)
    compiled           4949 (2483)         10.9 s (kernel build 10.7 s, once per machine)
    inductor           2148 (1080)         16.8 s
    compiled_js_only   1496 (760)          13.0 s
    roofline           7666 (3859)         12.4 s

compiled (the CPU kernel) = 38.3x the baseline (34.7x per CPU-second), 2.3x the torch.compile
kernel, 65% of the roofline; JS means agree within 2e-7. The roofline is ~59x the baseline.
The torch.compile kernel is 16.6x here; on the machine of the previous measurement (loaded) it
was 4.3x per CPU-second and 21% of its roofline, so compare only ratios from one run. Inductor
makes one loop over the chunk per reduction (block maxima; S_a, S_b; entropy/KL/JS/rank), each
streaming the chunk from memory; the kernel makes its three passes over a row while it is in cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _memory import reset_peak, rss_kib

REPO = Path(__file__).resolve().parents[1]


def make_inputs(n: int, vocab: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded bf16 logits shaped like an LM's (scale ~3) and a policy that moved some rows."""
    base = torch.empty(n, vocab, dtype=torch.bfloat16, device=device)
    policy = torch.empty_like(base)
    g = torch.Generator(device=device).manual_seed(0)
    for start in range(0, n, 64):  # in slices, so generation adds no peak memory of its own
        rows = base[start : start + 64]
        x = 3 * torch.randn(rows.shape, generator=g, device=device)
        strength = torch.where(torch.rand(rows.shape[0], 1, generator=g, device=device) < 0.1, 2.0, 0.01)
        rows.copy_(x)
        policy[start : start + 64].copy_(x + strength * torch.randn(rows.shape, generator=g, device=device))
    return base, policy


def straightforward_js(base: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """JS the obvious way: whole-tensor float32 softmaxes, mixture, two KLs."""
    p = torch.softmax(base.float(), dim=-1)
    q = torch.softmax(policy.float(), dim=-1)
    m = 0.5 * (p + q)
    kl_pm = (p * (p.log() - m.log())).sum(-1)
    kl_qm = (q * (q.log() - m.log())).sum(-1)
    return 0.5 * (kl_pm + kl_qm)



METHODS = ("straightforward", "eager", "compiled", "inductor", "compiled_js_only", "roofline")
"""compiled: token_divergence's compiled path (on CPU the hand-written kernel, cpu_kernel.cpp; its
first call builds it, from an empty extension cache). inductor: the torch.compile kernel (fused.py),
which CUDA runs and CPU falls back to (the same call, the CPU kernel switched off in its env).
compiled_js_only: the issue's reference point, torch.compile of straightforward_js over 64-row
chunks (JS only, float32 sums): what a fused kernel of the plain formula costs on this machine.
roofline: the machine's limit for any exact JS, see roofline()."""


def roofline_chunk(base: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """[C, V] bf16 chunk -> [C, 3] row sums of e^x, e^y and log(e^x + e^y): one read, 2 exps + 1 log per element.

    Any exact JS needs at least both exps and one log of the mixture per element, and row sums
    accurate to ~1e-7 at V = 152k; this does only that (no max, no normalisation, no other
    field). Sums as in the divergence kernel: float32 within 128-column blocks, float64 across.
    Each sum rebuilds its exps, so inductor fuses the three sums into one loop and computes
    each exp once per element (a shared exp would be stored to memory; see fused._exp_sums).
    """
    rows, vocab = base.shape
    blocked = vocab % 128 == 0

    def rowsum(terms: torch.Tensor) -> torch.Tensor:
        if blocked:
            return terms.view(rows, -1, 128).sum(-1).sum(-1, dtype=torch.float64)
        return terms.sum(-1, dtype=torch.float64)

    def exps() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.exp(base.float()), torch.exp(policy.float())

    return torch.stack([rowsum(exps()[0]), rowsum(exps()[1]), rowsum(torch.log(sum(exps())))], 1)


def roofline(base: torch.Tensor, policy: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """roofline_chunk compiled once for the compiled path's chunk shape, over all rows (float64 [N, 3])."""
    from sparse_rlvr.core.divergence.exact import compiled_chunk_size

    rows = rows or compiled_chunk_size(base.shape[1], base.device)
    kernel = torch.compile(roofline_chunk, dynamic=False, fullgraph=True,
                           options={"realize_reads_threshold": 1000, "realize_cpu_acc_reads_threshold": 1000})
    with torch._functorch.config.patch(cse=False):  # keep the per-sum exps apart in the graph
        return torch.cat([kernel(base[i : i + rows], policy[i : i + rows]) for i in range(0, len(base), rows)])


def compiled_js_only(base: torch.Tensor, policy: torch.Tensor, rows: int = 64) -> torch.Tensor:
    """straightforward_js compiled once for [rows, V] chunks (a short last chunk compiles once more)."""
    kernel = torch.compile(straightforward_js, dynamic=False)
    return torch.cat([kernel(base[i : i + rows], policy[i : i + rows]) for i in range(0, len(base), rows)])


def copy_bandwidth(device: str, mib: int = 2048) -> float:
    """Bytes per second moved (read + written) by one large device copy, best of 5."""
    src = torch.empty(mib << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() / best


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(method: str, n: int, vocab: int, device: str, chunk_size: int | None) -> dict:
    """Run one method (after a warm-up, which for the compiled path includes compiling) and time it."""
    from sparse_rlvr.core.divergence import token_divergence

    base, policy = make_inputs(n, vocab, device)
    run = {
        "straightforward": lambda b, p: straightforward_js(b, p),
        "eager": lambda b, p: token_divergence(b, p, chunk_size=chunk_size, compiled=False).js,
        "compiled": lambda b, p: token_divergence(b, p, chunk_size=chunk_size, compiled=True).js,
        "inductor": lambda b, p: token_divergence(b, p, chunk_size=chunk_size, compiled=True).js,
        "compiled_js_only": compiled_js_only,
        "roofline": lambda b, p: roofline(b, p, chunk_size)[:, 2],
    }[method]
    first_call_s = None
    if method.startswith("compiled") or method in ("inductor", "roofline"):  # the first call compiles every chunk shape this input needs
        _sync(device)
        start = time.perf_counter()
        run(base, policy)
        _sync(device)
        first_call_s = time.perf_counter() - start
    else:
        run(base[:8], policy[:8])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        reset_peak()
        before = rss_kib("VmRSS") * 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    js = run(base, policy)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else rss_kib("VmHWM") * 1024
    result = {"method": method, "seconds": seconds, "tokens_per_s": n / seconds, "cpu_seconds": cpu_seconds,
              "tokens_per_cpu_s": n / cpu_seconds,
              "peak_extra_mib": (peak - before) / 2**20, "js_mean": float(js.double().mean())}
    if first_call_s is not None:
        result["first_call_s"] = first_call_s
        result["compile_s"] = first_call_s - seconds  # first call minus a steady-state call
    if method == "compiled" and device == "cpu":
        from sparse_rlvr.core.divergence import cpu_kernel

        result["kernel_build_s"] = cpu_kernel.build_seconds()  # None: not built (the torch.compile path ran)
    if method == "compiled" and device == "cuda":
        bandwidth = copy_bandwidth(device)
        input_bytes = base.numel() * base.element_size() + policy.numel() * policy.element_size()
        result |= {"copy_bandwidth_gb_s": bandwidth / 1e9, "input_gb_s": input_bytes / seconds / 1e9,
                   "fraction_of_copy_bandwidth": input_bytes / seconds / bandwidth}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="token positions")
    parser.add_argument("--vocab", type=int, default=151_936, help="vocabulary size (Qwen2.5: 151,936)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk-size", type=int, default=None, help="rows per chunk (default: per-device budget)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every method (default: torch's)")
    parser.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        print(json.dumps(measure(args.only, args.n, args.vocab, args.device, args.chunk_size)))
        return
    results = {}
    load_before = os.getloadavg()
    for method in METHODS:
        cmd = [sys.executable, __file__, "--only", method, "--n", str(args.n), "--vocab", str(args.vocab),
               "--device", args.device] + (["--chunk-size", str(args.chunk_size)] if args.chunk_size else [])
        cmd += ["--threads", str(args.threads)] if args.threads else []
        with tempfile.TemporaryDirectory() as cache:  # empty inductor and extension caches: cold compile times
            env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache, "TORCH_EXTENSIONS_DIR": str(Path(cache) / "ext")}
            env |= {"SPARSE_RLVR_DIVERGENCE_CPU_KERNEL": "0"} if method == "inductor" else {}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO, env=env).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
    baseline, eager, compiled, inductor, js_only, roof = (results[m] for m in METHODS)
    summary = {
        "n": args.n, "vocab": args.vocab, "device": args.device, "torch_threads": torch.get_num_threads(),
        "results": results,
        "compiled_vs_straightforward": compiled["tokens_per_s"] / baseline["tokens_per_s"],
        "compiled_vs_eager": compiled["tokens_per_s"] / eager["tokens_per_s"],
        "compiled_vs_straightforward_per_cpu_s": compiled["tokens_per_cpu_s"] / baseline["tokens_per_cpu_s"],
        "eager_vs_straightforward": eager["tokens_per_s"] / baseline["tokens_per_s"],
        "inductor_vs_straightforward": inductor["tokens_per_s"] / baseline["tokens_per_s"],
        "compiled_vs_inductor": compiled["tokens_per_s"] / inductor["tokens_per_s"],
        "compiled_vs_compiled_js_only": compiled["tokens_per_s"] / js_only["tokens_per_s"],
        "compiled_fraction_of_roofline": compiled["tokens_per_s"] / roof["tokens_per_s"],
        "roofline_vs_straightforward": roof["tokens_per_s"] / baseline["tokens_per_s"],
        "load_average_1min_before_after": (load_before[0], os.getloadavg()[0]),
        "compiled_memory_ratio": compiled["peak_extra_mib"] / baseline["peak_extra_mib"],
        "js_mean_abs_diff": abs(compiled["js_mean"] - baseline["js_mean"]),
    }
    print(f"{'method':<16}{'tokens/s':>10}{'tokens/cpu-s':>14}{'peak extra MiB':>16}{'JS mean':>12}{'first call s':>14}")
    for r in results.values():
        first = f"{r['first_call_s']:.1f}" if "first_call_s" in r else "-"
        print(f"{r['method']:<16}{r['tokens_per_s']:>10.0f}{r['tokens_per_cpu_s']:>14.0f}{r['peak_extra_mib']:>16.0f}"
              f"{'-' if r['method'] == 'roofline' else format(r['js_mean'], '.6f'):>12}{first:>14}")
    print(f"compiled: {summary['compiled_vs_straightforward']:.1f}x the straightforward formulation (target >= 15x, "
          f"goal 25x; {summary['compiled_vs_straightforward_per_cpu_s']:.1f}x per CPU-second), "
          f"{summary['compiled_vs_eager']:.1f}x the eager core, {summary['compiled_vs_inductor']:.1f}x the torch.compile "
          f"kernel ({summary['inductor_vs_straightforward']:.1f}x the baseline); first call {compiled['first_call_s']:.1f} s"
          f"{' (kernel build ' + format(compiled['kernel_build_s'], '.1f') + ' s)' if compiled.get('kernel_build_s') else ''}; "
          f"peak memory {summary['compiled_memory_ratio']:.3f} of the baseline's; "
          f"{summary['compiled_vs_compiled_js_only']:.2f}x the compiled JS-only plain formula")
    print(f"roofline (one read, 2 exps + 1 log per element, row sums): {roof['tokens_per_s']:.0f} tokens/s = "
          f"{summary['roofline_vs_straightforward']:.1f}x the straightforward formulation; the compiled core runs at "
          f"{summary['compiled_fraction_of_roofline']:.0%} of it; load average {load_before[0]:.1f} before, "
          f"{summary['load_average_1min_before_after'][1]:.1f} after, on {os.cpu_count()} CPUs")
    if "fraction_of_copy_bandwidth" in compiled:
        print(f"compiled reads inputs at {compiled['input_gb_s']:.0f} GB/s = {compiled['fraction_of_copy_bandwidth']:.0%} "
              f"of the copy bandwidth {compiled['copy_bandwidth_gb_s']:.0f} GB/s (target >= 50%)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
