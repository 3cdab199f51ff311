"""Benchmark: exact streamed token_divergence vs the straightforward full-tensor formulation.

    .venv/bin/python benchmarks/divergence.py            # V = 151,936, N = 2,048, bf16, CPU
    .venv/bin/python benchmarks/divergence.py --device cuda --n 32768

The straightforward baseline upcasts both [N, V] tensors to float32, takes softmax of each,
the mixture, and two KLs against it (JS only). Ours computes JS, both KLs, both entropies and
the rank statistics. Each method runs in its own subprocess on identical seeded inputs; peak
memory is the process's peak RSS (CPU; reset through /proc/self/clear_refs) or
torch.cuda.max_memory_allocated (CUDA) above what the inputs already use.
Targets (CPU): >= 3x the baseline's tokens/s at <= 1/10 of its peak extra memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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



def measure(method: str, n: int, vocab: int, device: str, chunk_size: int | None) -> dict:
    """Run one method once (after a small warm-up) and return its throughput and peak memory."""
    from sparse_rlvr.core.divergence import token_divergence

    base, policy = make_inputs(n, vocab, device)
    run = {
        "straightforward": lambda b, p: straightforward_js(b, p),
        "sparse_rlvr": lambda b, p: token_divergence(b, p, chunk_size=chunk_size).js,
    }[method]
    run(base[:8], policy[:8])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        reset_peak()
        before = rss_kib("VmRSS") * 1024
    start = time.perf_counter()
    js = run(base, policy)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else rss_kib("VmHWM") * 1024
    return {"method": method, "seconds": seconds, "tokens_per_s": n / seconds,
            "peak_extra_mib": (peak - before) / 2**20, "js_mean": float(js.double().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="token positions")
    parser.add_argument("--vocab", type=int, default=151_936, help="vocabulary size (Qwen2.5: 151,936)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk-size", type=int, default=None, help="rows per chunk (default: per-device budget)")
    parser.add_argument("--only", choices=["straightforward", "sparse_rlvr"], help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.n, args.vocab, args.device, args.chunk_size)))
        return
    results = {}
    for method in ("straightforward", "sparse_rlvr"):
        cmd = [sys.executable, __file__, "--only", method, "--n", str(args.n), "--vocab", str(args.vocab),
               "--device", args.device] + (["--chunk-size", str(args.chunk_size)] if args.chunk_size else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
    ours, theirs = results["sparse_rlvr"], results["straightforward"]
    summary = {
        "n": args.n, "vocab": args.vocab, "device": args.device, "torch_threads": torch.get_num_threads(),
        "results": results,
        "speedup": ours["tokens_per_s"] / theirs["tokens_per_s"],
        "memory_ratio": ours["peak_extra_mib"] / theirs["peak_extra_mib"],
        "js_mean_abs_diff": abs(ours["js_mean"] - theirs["js_mean"]),
    }
    print(f"{'method':<16}{'tokens/s':>12}{'peak extra MiB':>16}{'JS mean':>12}")
    for r in results.values():
        print(f"{r['method']:<16}{r['tokens_per_s']:>12.0f}{r['peak_extra_mib']:>16.0f}{r['js_mean']:>12.6f}")
    print(f"speedup {summary['speedup']:.2f}x (target >= 3x), "
          f"peak memory {summary['memory_ratio']:.3f} of the baseline (target <= 0.1)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
