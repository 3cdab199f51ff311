"""Benchmark `sparse-rlvr shift` on CPU: overhead over the two forwards, and memory at 4k x 152k.

    .venv/bin/python benchmarks/shift.py

1. Throughput on the tiny pair: the whole per-shard pipeline (tokenise, both teacher-forced
   forwards, exact divergence, per-token table, parquet shard) against the two teacher-forced
   forward passes alone (model(ids).logits) on the same batches: the limit. Target <= 1.30x.
2. Memory: one 4,096-token response scored by two tiny models with a 151,936-token vocabulary.
   Materialising [T, V] float32 logits for both models would take 2 x 4096 x 151936 x 4 B =
   4.6 GiB; the chunked path's peak RSS growth is reported beside that figure.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from _memory import reset_peak, rss_kib

from sparse_rlvr.analysis.config import LOGITS_BUDGET_BYTES, ShiftConfig
from sparse_rlvr.core.tables import Sequence
from sparse_rlvr.analysis.runner import plan_shards
from sparse_rlvr.analysis.store import write_shard
from sparse_rlvr.analysis.teacher_force import compare_sequences
from sparse_rlvr.analysis.worker import ShiftWorker
from sparse_rlvr.workflows.tiny_models import PADDED_ROWS, save_checkpoint, tiny_model, tiny_pair



def throughput(root: Path, rows: int = 128, repeats: int = 3) -> dict:
    """End-to-end shard pipeline vs the two forwards alone, best of `repeats`."""
    base, policy, tokenizer = tiny_pair()
    for name, model in (("base", base), ("policy", policy)):
        save_checkpoint(model, tokenizer, root / name)
    data = root / "data.jsonl"
    data.write_text("\n".join(json.dumps({
        "prompt": f"Compute {i} * 17 + {i % 9}.",
        "response": f"First {i} * 17 = {i * 17}. Then {i * 17} + {i % 9} = {i * 17 + i % 9}. " * 4
        + f"The answer is \\boxed{{{i * 17 + i % 9}}}."}) for i in range(rows)))
    config = ShiftConfig(base=str(root / "base"), policies=[str(root / "policy")], data=str(data),
                         out=str(root / "out"), shard_size=32, batch_size=8)
    worker = ShiftWorker(config, config.policies[0])
    shards = plan_shards(config)
    batches = [worker._sequences(s)[0] for s in shards]
    tokens = sum(len(q.response_ids) for b in batches for q in b)

    def forwards_only() -> None:
        with torch.no_grad():
            for sequences in batches:
                for start in range(0, len(sequences), config.batch_size):
                    batch = sequences[start : start + config.batch_size]
                    length = max(len(q.prompt_ids) + len(q.response_ids) for q in batch)
                    ids = torch.full((len(batch), length), worker.pad_id)
                    mask = torch.zeros_like(ids)
                    for r, q in enumerate(batch):
                        ids[r, : len(q.prompt_ids) + len(q.response_ids)] = torch.tensor(q.prompt_ids + q.response_ids)
                        mask[r, : len(q.prompt_ids) + len(q.response_ids)] = 1
                    worker.base(input_ids=ids, attention_mask=mask).logits
                    worker.policy(input_ids=ids, attention_mask=mask).logits

    def pipeline() -> None:
        for shard in shards:
            result = worker.run_shard(shard)
            write_shard(root / "out", result.index, result.tokens, result.counts)

    timings = {}
    for name, run in (("two_forwards", forwards_only), ("shift_pipeline", pipeline)):
        run()  # warm-up
        timings[name] = min(_timed(run) for _ in range(repeats))
    return {"tokens": tokens, "seconds": timings,
            "tokens_per_s": {k: tokens / v for k, v in timings.items()},
            "overhead_ratio": timings["shift_pipeline"] / timings["two_forwards"]}


def long_response_memory(length: int = 4096, vocab: int = 151_936) -> dict:
    """Peak RSS growth while scoring one `length`-token response with a `vocab`-token pair."""
    torch.manual_seed(0)
    base = tiny_model(seed=0, vocab_size=vocab - PADDED_ROWS, max_position_embeddings=length + 64)
    policy = tiny_model(seed=1, vocab_size=vocab - PADDED_ROWS, max_position_embeddings=length + 64)
    ids = torch.randint(10, vocab - PADDED_ROWS, (length + 8,)).tolist()
    sequence = Sequence(0, ids[:8], ids[8:])
    kwargs = dict(pad_id=0, vocab_size=vocab - PADDED_ROWS, token_chunk=LOGITS_BUDGET_BYTES // (4 * vocab), top_k=10, candidates=5)
    compare_sequences(base, policy, [Sequence(0, ids[:8], ids[8:40])], **kwargs)  # warm-up
    reset_peak()
    before = rss_kib("VmRSS")
    start = time.perf_counter()
    columns = compare_sequences(base, policy, [sequence], **kwargs)
    seconds = time.perf_counter() - start
    peak_growth = (rss_kib("VmHWM") - before) / 1024
    naive = 2 * length * vocab * 4 / 2**20
    return {"tokens": len(columns["js"]), "vocab": vocab, "seconds": seconds, "tokens_per_s": length / seconds,
            "peak_rss_growth_mib": peak_growth, "two_full_float32_logits_mib": naive,
            "fraction_of_full_logits": peak_growth / naive}


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        speed = throughput(Path(root))
    print(f"tiny pair, {speed['tokens']} response tokens: two forwards alone "
          f"{speed['tokens_per_s']['two_forwards']:.0f} tok/s, shift pipeline "
          f"{speed['tokens_per_s']['shift_pipeline']:.0f} tok/s -> {speed['overhead_ratio']:.2f}x the limit (target <= 1.30x)")
    memory = long_response_memory()
    print(f"{memory['tokens']} tokens x {memory['vocab']} vocab: {memory['seconds']:.1f} s, peak RSS growth "
          f"{memory['peak_rss_growth_mib']:.0f} MiB vs {memory['two_full_float32_logits_mib']:.0f} MiB for two full "
          f"float32 [T, V] logits ({memory['fraction_of_full_logits']:.1%})")
    print(json.dumps({"throughput": speed, "long_response": memory}, indent=1))


if __name__ == "__main__":
    main()
