"""Run cross-sampling: plan settings and shards, decode what is not on disk yet, tabulate.

    DIR/config.json                         settings that determine the responses (checked on resume)
    DIR/<direction>/<setting>/shard-00000.jsonl   one graded response per line, written atomically
    DIR/results.json, DIR/accuracy_vs_budget.png, DIR/report.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sparse_rlvr.core.tables import plain, read_table, require_column
from sparse_rlvr.interventions.config import CrossSampleConfig
from sparse_rlvr.interventions.results import results_table
from sparse_rlvr.interventions.worker import CrossSampleWorker, Setting, Task
from sparse_rlvr.core.parallel import map_shards
from sparse_rlvr.core.run_files import atomic_write, check_or_write_fingerprint
from sparse_rlvr.core.testing_hooks import kill_after_shard_test_hook


def plan_settings(config: CrossSampleConfig) -> list[Setting]:
    """Both pure models (measured, not copied), each budget, and its random control after it."""
    settings = [Setting("primary-only", "never"), Setting("intervening-only", "js-threshold", 0.0)]
    values = {"js-threshold": config.eps, "top-budget": config.budgets, "entropy": config.thresholds}[config.rule]
    prefix = {"js-threshold": "js", "top-budget": "budget", "entropy": "entropy"}[config.rule]
    for value in values:
        name = f"{prefix}-{value:g}"
        settings.append(Setting(name, config.rule, value))
        if config.random_control:
            settings.append(Setting(f"random@{name}", "random", None, matched=name))
    return settings


def read_rows(config: CrossSampleConfig) -> list[dict[str, Any]]:
    """Prompts and ground truths from verl parquet or JSONL."""
    table = read_table(config.data)
    require_column(table, config.prompt_column, config.data, "--prompt-column")
    answers = _answers(table, config)
    return [{"index": i, "prompt": plain(table[config.prompt_column].iat[i]), "answer": answers[i]} for i in range(len(table))]


def _answers(table: pd.DataFrame, config: CrossSampleConfig) -> list[Any]:
    if config.answer_column != "auto":
        require_column(table, config.answer_column, config.data, "--answer-column")
        return table[config.answer_column].tolist()
    if "reward_model" in table.columns:  # verl's format
        return [plain(rm["ground_truth"]) for rm in table["reward_model"]]
    for column in ("ground_truth", "answer", "solution"):
        if column in table.columns:
            return table[column].tolist()
    raise KeyError(f"{config.data} has no ground truth (columns found: {', '.join(map(str, table.columns))}); "
                   "name it with --answer-column")


def run_cross_sample(config: CrossSampleConfig, show_progress: bool = True) -> list[dict[str, Any]]:
    """Decode and grade every (setting, shard) not on disk, then write the results table and report."""
    from rich.progress import Progress

    check_or_write_fingerprint(config.out_dir, config.fingerprint())
    rows = read_rows(config)
    shards = [rows[i : i + config.shard_size] for i in range(0, len(rows), config.shard_size)]
    settings = plan_settings(config)
    written = 0
    with Progress(disable=not show_progress) as progress:
        for setting in settings:
            todo = [Task(setting, k, shard, _matched(config, setting, k)) for k, shard in enumerate(shards)
                    if not _shard_path(config, setting.name, k).exists()]
            bar = progress.add_task(f"{config.direction} {setting.name}", total=len(shards), completed=len(shards) - len(todo))
            for task, records in map_shards(CrossSampleWorker, (config,), todo, config.workers):
                path = _shard_path(config, task.setting.name, task.shard)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, "".join(json.dumps(r) + "\n" for r in records).encode())
                written += 1
                kill_after_shard_test_hook(written)
                progress.advance(bar)
    records = {s.name: read_records(config, s.name) for s in settings}
    table = results_table(config, settings, records)
    (config.out_dir / "results.json").write_text(json.dumps(table, indent=2))
    from sparse_rlvr.interventions.report import write_report

    write_report(config, table, records)
    return table


def read_records(config: CrossSampleConfig, setting: str) -> list[dict[str, Any]]:
    """Every graded response of one setting, in shard order."""
    directory = config.out_dir / config.direction / setting
    return [json.loads(line) for path in sorted(directory.glob("shard-*.jsonl")) for line in path.read_text().splitlines()]


def _matched(config: CrossSampleConfig, setting: Setting, shard: int) -> list[dict[str, Any]]:
    if setting.matched is None:
        return []
    path = _shard_path(config, setting.matched, shard)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _shard_path(config: CrossSampleConfig, setting: str, shard: int) -> Path:
    return config.out_dir / config.direction / setting / f"shard-{shard:05d}.jsonl"
