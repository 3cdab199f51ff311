"""Benchmark the lock-step cross-sampling engine on the tiny pair (CPU by default).

    .venv/bin/python benchmarks/cross_sample.py

Time per generated token (per sequence step, batch of --batch sequences) of:
- lock-step: cross_sample with js-threshold eps = 0.1 (both models, exact JS, sampling, switching);
- limit: the two models each decoding alone with their KV caches (decode_alone, summed);
- recompute: a straightforward loop that runs both models over the whole prefix every step.
Target: lock-step <= 1.25x the limit; the gap to recompute is reported at 256 and 1,024 tokens.
EOS is disabled so every run generates exactly the requested number of tokens.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sparse_rlvr.core.divergence import token_divergence
from sparse_rlvr.core.decoding import decode_alone, left_pad
from sparse_rlvr.core.sampling import SamplingOptions, sample
from sparse_rlvr.interventions.engine import cross_sample
from sparse_rlvr.interventions.rules import SwitchRule
from sparse_rlvr.workflows.tiny_models import tiny_pair


@torch.inference_mode()
def recompute_prefix(primary, intervening, prompts, options, *, vocab_size, pad_id, seed, eps=0.1):
    """The straightforward baseline: full forward of both models over the prefix at every step."""
    ids, mask = left_pad(prompts, pad_id)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(options.max_new_tokens):
        a = primary(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :vocab_size].float()
        b = intervening(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :vocab_size].float()
        swap = token_divergence(a, b, top_k=1).js > eps
        tokens = sample(torch.where(swap[:, None], b, a), options.temperature, options.top_p, generator)
        ids = torch.cat([ids, tokens[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        positions = torch.cat([positions, positions[:, -1:] + 1], 1)


def measure(new_tokens: int, batch: int, recompute: bool) -> dict:
    base, policy, tokenizer = tiny_pair(shift=0.5, max_position_embeddings=4096)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": f"Compute {i} * 13."}],
                                             add_generation_prompt=True)["input_ids"] for i in range(batch)]
    options = SamplingOptions(temperature=1.0, top_p=0.7, max_new_tokens=new_tokens)
    kw = dict(vocab_size=len(tokenizer), eos_id=-1, pad_id=tokenizer.pad_token_id, seed=0)
    runs = {
        "lock_step": lambda: cross_sample(base, policy, prompts, SwitchRule("js-threshold", eps=0.1), options, **kw),
        "base_alone": lambda: decode_alone(base, prompts, options, **kw),
        "policy_alone": lambda: decode_alone(policy, prompts, options, **kw),
    }
    if recompute:
        runs["recompute"] = lambda: recompute_prefix(base, policy, prompts, options, vocab_size=len(tokenizer),
                                                     pad_id=tokenizer.pad_token_id, seed=0)
    seconds = {}
    for name, run in runs.items():
        run() if name != "recompute" else None  # warm-up (the recompute baseline is too slow to run twice)
        start = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - start
    per_token = {k: 1e3 * v / new_tokens for k, v in seconds.items()}
    limit = per_token["base_alone"] + per_token["policy_alone"]
    result = {"new_tokens": new_tokens, "batch": batch, "ms_per_step": per_token, "limit_ms_per_step": limit,
              "lock_step_vs_limit": per_token["lock_step"] / limit}
    if recompute:
        result["recompute_vs_lock_step"] = per_token["recompute"] / per_token["lock_step"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", default="256,1024")
    args = parser.parse_args()
    results = [measure(int(n), args.batch, recompute=True) for n in args.tokens.split(",")]
    for r in results:
        print(f"{r['new_tokens']} new tokens, batch {r['batch']}: lock-step {r['ms_per_step']['lock_step']:.2f} ms/step, "
              f"limit (two models alone) {r['limit_ms_per_step']:.2f} ms/step -> {r['lock_step_vs_limit']:.2f}x "
              f"(target <= 1.25x); recompute-prefix {r['ms_per_step']['recompute']:.2f} ms/step "
              f"= {r['recompute_vs_lock_step']:.1f}x slower than lock-step")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
