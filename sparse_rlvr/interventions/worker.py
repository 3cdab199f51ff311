"""One unit of cross-sampling work: a shard of prompts under one setting, decoded and graded."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sparse_rlvr.core.tables import prompt_ids
from sparse_rlvr.core.models import TokenTexts, check_same_tokenizer, load_model, load_tokenizer, pick_device, torch_dtype
from sparse_rlvr.interventions.config import CrossSampleConfig
from sparse_rlvr.core.sampling import SamplingOptions
from sparse_rlvr.interventions.engine import cross_sample
from sparse_rlvr.interventions.grading import grade
from sparse_rlvr.interventions.rules import SwitchRule


@dataclass
class Setting:
    """A named switching rule; `matched` names the setting whose swap counts a random control copies."""

    name: str
    rule: str
    value: float | None = None
    matched: str | None = None

    def switch_rule(self, max_new_tokens: int, positions: list[set[int]] | None = None) -> SwitchRule:
        params = {"js-threshold": "eps", "top-budget": "budget", "entropy": "threshold"}
        kwargs = {params[self.rule]: self.value} if self.rule in params else {}
        return SwitchRule(self.rule, max_new_tokens=max_new_tokens, positions=positions or [], **kwargs)


@dataclass
class Task:
    setting: Setting
    shard: int
    rows: list[dict[str, Any]]
    """{"index": prompt row, "prompt": ..., "answer": ...}"""
    matched_records: list[dict[str, Any]] = field(default_factory=list)


class CrossSampleWorker:
    """Holds both models and decodes tasks; the primary/intervening roles follow the direction."""

    def __init__(self, config: CrossSampleConfig) -> None:
        self.config = config
        device = pick_device()
        dtype = torch_dtype(config.dtype, device)
        self.tokenizer = load_tokenizer(config.base)
        check_same_tokenizer(self.tokenizer, load_tokenizer(config.policy), config.base, config.policy)
        base, policy = load_model(config.base, dtype, device), load_model(config.policy, dtype, device)
        self.primary, self.intervening = (base, policy) if config.direction == "forward" else (policy, base)
        self.token_texts = TokenTexts(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id

    def run_shard(self, task: Task) -> tuple[Task, list[dict[str, Any]]]:
        """Decode `samples` responses per prompt of the task and grade them."""
        cfg = self.config
        jobs = [(row, s) for row in task.rows for s in range(cfg.samples)]
        positions = self._random_positions(task, jobs) if task.setting.rule == "random" else None
        records: list[dict[str, Any]] = []
        for start in range(0, len(jobs), cfg.batch_size):
            batch = jobs[start : start + cfg.batch_size]
            rule = task.setting.switch_rule(cfg.max_new_tokens, positions[start : start + cfg.batch_size] if positions else None)
            decoded = cross_sample(
                self.primary, self.intervening,
                [prompt_ids(self.tokenizer, row["prompt"], cfg.chat_template) for row, _ in batch],
                rule, SamplingOptions(cfg.temperature, cfg.top_p, cfg.max_new_tokens),
                vocab_size=len(self.tokenizer), eos_id=self.tokenizer.eos_token_id, pad_id=self.pad_id,
                # the seed does not depend on the setting: every setting draws the same uniforms
                seed=cfg.seed * 1_000_003 + task.shard * 10_007 + start,
            )
            for (row, sample), result in zip(batch, decoded):
                records.append({
                    "prompt_index": row["index"], "sample": sample, "answer": row["answer"],
                    "response": self.tokenizer.decode(result.tokens, skip_special_tokens=True),
                    "tokens": result.tokens, "n_tokens": len(result.tokens),
                    "token_texts": self.token_texts(result.tokens),
                    "swapped_positions": result.swapped_positions,
                    "swapped_tokens": self.token_texts(result.swapped_tokens),
                    "n_swapped": len(result.swapped_positions),
                    "frac_swapped": len(result.swapped_positions) / max(len(result.tokens), 1),
                })
        for record, verdict in zip(records, grade([r["response"] for r in records], [r["answer"] for r in records])):
            record.update(verdict)
        return task, records

    def _random_positions(self, task: Task, jobs: list) -> list[set[int]]:
        """Per response, as many random steps as the matched setting swapped in the same response."""
        matched = {(r["prompt_index"], r["sample"]): r for r in task.matched_records}
        positions = []
        for row, sample in jobs:
            reference = matched[(row["index"], sample)]
            rng = random.Random(f"{self.config.seed}-{row['index']}-{sample}")
            positions.append(set(rng.sample(range(reference["n_tokens"]), reference["n_swapped"])))
        return positions
