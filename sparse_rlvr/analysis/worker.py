"""One unit of work of a shift analysis: turn a shard of data rows into per-token results.

The same class runs in-process and inside Ray actors (`--workers N`), so both paths compute
exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from sparse_rlvr.analysis.config import LOGITS_BUDGET_BYTES, ShiftConfig
from sparse_rlvr.core.decoding import decode_alone
from sparse_rlvr.core.sampling import SamplingOptions
from sparse_rlvr.core.tables import Sequence, prompt_ids, token_list
from sparse_rlvr.core.models import TokenTexts, context_length, load_model, load_tokenizer, pick_device, torch_dtype
from sparse_rlvr.analysis.teacher_force import compare_sequences


@dataclass
class Shard:
    """Rows of the input file processed together; `index` names the output file."""

    index: int
    rows: list[dict[str, Any]]
    """Each {"row": row number, "prompt": text or chat list, "response": text, ids or None}."""


@dataclass
class ShardResult:
    index: int
    tokens: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


class ShiftWorker:
    """Holds a base and a policy model and scores shards with them."""

    def __init__(self, config: ShiftConfig, policy: str) -> None:
        self.config = config
        self.device = pick_device()
        dtype = torch_dtype(config.dtype, self.device)
        self.tokenizer = load_tokenizer(config.base)
        self.base = load_model(config.base, dtype, self.device)
        self.policy = load_model(policy, dtype, self.device)
        self.token_texts = TokenTexts(self.tokenizer)
        self.max_length = config.max_length or context_length(self.base)
        self.token_chunk = config.token_chunk or max(1, LOGITS_BUDGET_BYTES // (4 * len(self.tokenizer)))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id

    def run_shard(self, shard: Shard) -> ShardResult:
        """Per-token results of one shard, plus counts of skipped and truncated responses."""
        sequences, counts = self._sequences(shard)
        table = _table(compare_sequences(
            self.base, self.policy, sequences, pad_id=self.pad_id, vocab_size=len(self.tokenizer),
            token_chunk=self.token_chunk, top_k=self.config.top_k, candidates=self.config.candidates,
            batch_size=self.config.batch_size,
        ))
        table = table.add_column(5, "token", pa.array(self.token_texts(table["token_id"].to_pylist()), pa.string()))
        counts["sequences"] = len(sequences)
        counts["tokens"] = table.num_rows
        return ShardResult(shard.index, table, counts)

    def _sequences(self, shard: Shard) -> tuple[list[Sequence], dict[str, int]]:
        counts = {"empty": 0, "truncated": 0, "prompt_too_long": 0}
        n = self.config.generate if self.config.sequences != "file" else 1
        prompts = [prompt_ids(self.tokenizer, r["prompt"], self.config.chat_template) for r in shard.rows]
        if self.config.sequences == "file":
            responses = [[ids] for ids in self._response_ids([r["response"] for r in shard.rows])]
        else:
            responses = self._generate(prompts, n, shard.index)
        sequences = []
        for row, prompt, row_responses in zip(shard.rows, prompts, responses):
            for j, response in enumerate(row_responses):
                room = self.max_length - len(prompt)
                if room < 1:
                    counts["prompt_too_long"] += 1
                    continue
                if len(response) > room:
                    response, counts["truncated"] = response[:room], counts["truncated"] + 1
                if not response:
                    counts["empty"] += 1
                    continue
                sequences.append(Sequence(row["row"] * n + j, prompt, response))
        return sequences, counts

    def _response_ids(self, responses: list[Any]) -> list[list[int]]:
        """Token ids of responses given as text (tokenised in one batch call) or as id lists."""
        texts = [r for r in responses if isinstance(r, str)]
        encoded = iter(self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
        return [next(encoded) if isinstance(r, str) else token_list(r) for r in responses]

    def _generate(self, prompts: list[list[int]], n: int, shard_index: int) -> list[list[list[int]]]:
        """n sampled responses per prompt from the chosen model, each up to and including its EOS.

        The package's one decoder and sampler (`core.decoding`), `batch_size` sequences at a time,
        seeded per shard and batch (so resumes and Ray workers sample the same responses).
        """
        model = self.policy if self.config.sequences == "policy" else self.base
        options = SamplingOptions(self.config.temperature, self.config.top_p, self.config.max_new_tokens)
        eos = self.tokenizer.eos_token_id
        jobs = [prompt for prompt in prompts for _ in range(n)]
        responses: list[list[int]] = []
        for start in range(0, len(jobs), self.config.batch_size):
            responses += decode_alone(
                model, jobs[start : start + self.config.batch_size], options, vocab_size=len(self.tokenizer),
                eos_id=eos if eos is not None else -1, pad_id=self.pad_id,
                seed=self.config.seed * 1_000_003 + shard_index * 10_007 + start,
            )
        return [responses[i * n : (i + 1) * n] for i in range(len(prompts))]


def _table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Columns as an Arrow table; [N, K] arrays become fixed-size list columns (fast, no Python objects)."""
    arrays = {
        name: pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v).reshape(-1)), v.shape[1])
        if v.ndim == 2 else pa.array(v)
        for name, v in columns.items()
    }
    return pa.table(arrays)
