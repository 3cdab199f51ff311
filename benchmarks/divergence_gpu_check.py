"""The divergence core's GPU checks in one script: correctness against float64 on CUDA, and bandwidth.

    python benchmarks/divergence_gpu_check.py            # from a plain checkout; needs only torch + numpy
    OUT=/some/dir python benchmarks/divergence_gpu_check.py   # also writes $OUT/divergence_gpu.json

1. Correctness: bf16 logits at V = 151,936 (with an identical pair of rows, huge logit gaps and
   a masked row) through the compiled kernel and the eager path on CUDA, every float field
   against the float64 reference (target: max error < 1e-6 compiled, 2e-6 eager), ranks exactly.
2. Throughput: the compiled path on N x V bf16 logits, as input bytes per second over the
   device's copy bandwidth (bytes read + written by a 2 GiB copy); target >= 50%.
Runs in well under 5 minutes on one GPU. Without CUDA it runs the correctness check on CPU
(small N) and exits with status 2, saying that the GPU part needs CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparse_rlvr.core.divergence import token_divergence  # noqa: E402
from tests.core.divergence.reference import reference_divergence  # noqa: E402

FLOAT_FIELDS = ["js", "kl_base_policy", "kl_policy_base", "base_entropy", "policy_entropy", "base_prob_of_policy_top1"]
VOCAB = 151_936
TOLERANCE = {"compiled": 1e-6, "eager": 2e-6}
"""Max abs error allowed against float64: the compiled kernel's target; the eager path's float32
normaliser leaves entropies ~1e-6 off at V = 152k (as its CPU tests allow)."""


def check_inputs(n: int, device: str, masked: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded bf16 logits: LM-like rows, an identical pair, huge gaps; or with a masked row 3."""
    g = torch.Generator().manual_seed(0)
    base = 3 * torch.randn(n, VOCAB, generator=g)
    policy = base + torch.where(torch.rand(n, 1, generator=g) < 0.3, 2.0, 0.01) * torch.randn(n, VOCAB, generator=g)
    policy[1] = base[1]  # identical rows: JS and both KLs exactly 0
    base[2], policy[2] = 1e4 * torch.randn(VOCAB, generator=g), 1e4 * torch.randn(VOCAB, generator=g)  # huge gaps
    if masked:  # a chunk with masked tokens is recomputed on the eager path; KL(p||q) = inf there
        policy[3, : VOCAB // 2] = -torch.inf
    return base.bfloat16().to(device), policy.bfloat16().to(device)


def correctness(device: str, n: int, masked: bool = False) -> dict:
    """Max abs error of each float field against float64, for the compiled and the eager path."""
    base, policy = check_inputs(n, device, masked)
    ref = reference_divergence(base.float().cpu(), policy.float().cpu(), top_k=10)
    report = {}
    for path in ("compiled", "eager"):
        start = time.perf_counter()
        result = token_divergence(base, policy, compiled=path == "compiled").to("cpu")
        seconds = time.perf_counter() - start
        errors = {}
        for name in FLOAT_FIELDS:
            got, want = getattr(result, name).double().numpy(), ref[name]
            finite = np.isfinite(want)
            assert np.array_equal(np.isfinite(got), finite), f"{path} {name}: non-finite values differ"
            errors[name] = float(np.abs(got[finite] - want[finite]).max())
        ranks_equal = bool(np.array_equal(result.policy_top1_rank_in_base.numpy(), ref["policy_top1_rank_in_base"]))
        identical_zero = all(float(getattr(result, f)[1]) == 0.0 for f in ("js", "kl_base_policy", "kl_policy_base"))
        report[path] = {"max_abs_error": errors, "ranks_equal": ranks_equal, "identical_rows_exactly_zero": identical_zero,
                        "first_call_s": seconds, "tolerance": TOLERANCE[path],
                        "passed": max(errors.values()) < TOLERANCE[path] and ranks_equal and identical_zero}
    return report


def bandwidth(n: int) -> dict:
    """The compiled path's input bytes/s over the measured device copy bandwidth."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from divergence import copy_bandwidth, make_inputs

    base, policy = make_inputs(n, VOCAB, "cuda")
    token_divergence(base, policy, compiled=True)  # compiles every shape this input needs
    best = float("inf")
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        token_divergence(base, policy, compiled=True)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    input_bytes = 2 * base.numel() * base.element_size()
    copy = copy_bandwidth("cuda")
    return {"n": n, "seconds": best, "tokens_per_s": n / best, "input_gb_s": input_bytes / best / 1e9,
            "copy_bandwidth_gb_s": copy / 1e9, "fraction_of_copy_bandwidth": input_bytes / best / copy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16384, help="token positions for the bandwidth figure")
    args = parser.parse_args()
    summary: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        summary["device"] = torch.cuda.get_device_name()
        summary["correctness"] = correctness("cuda", n=64)
        summary["correctness_masked"] = correctness("cuda", n=8, masked=True)
        summary["bandwidth"] = bandwidth(args.n)
        passed = all(r["passed"] for key in ("correctness", "correctness_masked") for r in summary[key].values())
        summary["passed"] = passed and summary["bandwidth"]["fraction_of_copy_bandwidth"] >= 0.5
    else:
        print("NEEDS CUDA: no CUDA device here; running the correctness check on CPU only, no bandwidth figure.")
        summary["correctness_cpu"] = correctness("cpu", n=6)
        summary["correctness_masked_cpu"] = correctness("cpu", n=4, masked=True)
        summary["passed"] = None
    text = json.dumps(summary, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "divergence_gpu.json").write_text(text)
    return 0 if torch.cuda.is_available() else 2


if __name__ == "__main__":
    sys.exit(main())
