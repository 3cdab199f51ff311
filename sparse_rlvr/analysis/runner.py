"""Run a shift analysis: plan shards, score the unfinished ones (in-process or on Ray), summarise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparse_rlvr.analysis.config import ShiftConfig
from sparse_rlvr.core.errors import UserError, kept_on_failure
from sparse_rlvr.core.tables import check_prompts, plain, read_table, require_column
from sparse_rlvr.core.models import check_same_tokenizer, load_tokenizer
from sparse_rlvr.analysis.store import (
    check_or_write_config, is_done, policy_dir, read_counts, read_tokens, write_shard,
)
from sparse_rlvr.analysis.report import render_report
from sparse_rlvr.analysis.summary import evolution, summarize
from sparse_rlvr.analysis.worker import Shard, ShiftWorker
from sparse_rlvr.core.parallel import map_shards
from sparse_rlvr.core.testing_hooks import kill_after_shard_test_hook


REPORT_COLUMNS = ["sample_id", "token", "js", "base_top_ids", "base_top_probs", "policy_top_ids", "policy_top_probs"]


def plan_shards(config: ShiftConfig) -> list[Shard]:
    """The input rows split into shards of `shard_size`, in file order (deterministic, for resume)."""
    table = read_table(config.data)
    require_column(table, config.prompt_column, config.data, "--prompt-column")
    if config.sequences == "file":
        if config.response_column not in table.columns:
            require_column(table, config.response_column, config.data,
                           "--response-column, or sample responses with --sequences policy --generate N")
    if table.empty:
        raise UserError(f"--data {config.data} has no rows; give a data file with at least one prompt")
    prompts = [plain(p) for p in table[config.prompt_column]]
    check_prompts(prompts, config.data, "--prompt-column")
    rows = [
        {"row": i, "prompt": prompts[i],
         "response": plain(table[config.response_column].iat[i]) if config.sequences == "file" else None}
        for i in range(len(table))
    ]
    return [Shard(index=k, rows=rows[start : start + config.shard_size])
            for k, start in enumerate(range(0, len(rows), config.shard_size))]


def run_shift(config: ShiftConfig, show_progress: bool = True) -> dict[str, Any]:
    """Score every shard not yet on disk for every policy, then write summary.json files.

    Returns the summary of the last policy, with the evolution over policies when several.
    """
    base_tokenizer = load_tokenizer(config.base)
    for policy in config.policies:  # before any work: a mismatch fails in seconds, not hours
        check_same_tokenizer(base_tokenizer, load_tokenizer(policy), config.base, policy)
    shards = plan_shards(config)
    try:
        check_or_write_config(config)
    except ValueError as error:  # another run's settings in --out
        raise UserError(str(error)) from error
    summaries: dict[str, dict] = {}
    written = 0
    for index, policy in enumerate(config.policies):
        directory = policy_dir(config, index)
        todo = [s for s in shards if not is_done(directory, s.index)]
        with kept_on_failure(config.out_dir, lambda: written):
            for result in _execute(config, policy, todo, show_progress):
                write_shard(directory, result.index, result.tokens, result.counts)
                written += 1
                kill_after_shard_test_hook(written)
        summary = summarize(read_tokens(directory), config.cutoffs, config.high, read_counts(directory))
        (directory / "summary.json").write_text(json.dumps(summary, indent=2))
        summaries[policy] = summary
    final = dict(summaries[config.policies[-1]]) | {"policy": config.policies[-1], "base": config.base}
    if len(summaries) > 1:
        final["evolution"] = evolution(summaries)
    (config.out_dir / "summary.json").write_text(json.dumps(final, indent=2))
    tokens = read_tokens(policy_dir(config, len(config.policies) - 1), columns=REPORT_COLUMNS)
    page = render_report(final, tokens, lambda i: base_tokenizer.decode([i]), config.report_samples)
    (config.out_dir / "report.html").write_text(page, encoding="utf-8")
    return final


def _execute(config: ShiftConfig, policy: str, todo: list[Shard], show_progress: bool) -> Iterator[Any]:
    """Yield ShardResults as they finish, from one in-process worker or from Ray actors."""
    if not todo:
        return
    from rich.progress import Progress

    with Progress(disable=not show_progress, transient=False) as progress:
        task = progress.add_task(f"shift {Path(policy).name}", total=len(todo))
        for result in map_shards(ShiftWorker, (config, policy), todo, config.workers):
            progress.advance(task)
            yield result
