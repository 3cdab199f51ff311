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

from sparse_rlvr.core.tables import check_prompts, plain, read_table, require_column
from sparse_rlvr.core.errors import MissingColumnError, UserError
from sparse_rlvr.interventions.config import AUTO_ANSWER_COLUMNS, CrossSampleConfig
from sparse_rlvr.interventions.results import results_table
from sparse_rlvr.interventions.worker import CrossSampleWorker, Setting, Task
from sparse_rlvr.core.parallel import map_shards
from sparse_rlvr.core.errors import check_not_all_failed, kept_on_failure
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
    if table.empty:
        raise UserError(f"--data {config.data} has no rows; give a data file with at least one prompt")
    answers = _answers(table, config)
    if all(_missing(a) for a in answers):
        raise UserError(f"{config.data}: every ground truth is empty (first: {answers[0]!r}); "
                        "name the column that holds them with --answer-column")
    prompts = [plain(p) for p in table[config.prompt_column]]
    check_prompts(prompts, config.data, "--prompt-column")
    return [{"index": i, "prompt": prompts[i], "answer": answers[i]} for i in range(len(table))]


def _missing(answer: Any) -> bool:
    return answer is None or (isinstance(answer, float) and answer != answer) or str(answer).strip() == ""


def _answers(table: pd.DataFrame, config: CrossSampleConfig) -> list[Any]:
    if config.answer_column != "auto":
        require_column(table, config.answer_column, config.data, "--answer-column")
        return table[config.answer_column].tolist()
    if "reward_model" in table.columns:  # verl's format
        return [plain(rm["ground_truth"]) for rm in table["reward_model"]]
    for column in AUTO_ANSWER_COLUMNS:
        if column in table.columns:
            return table[column].tolist()
    raise MissingColumnError(f"{config.data} has no ground truth (columns found: {', '.join(map(str, table.columns))}); "
                   "name it with --answer-column")


def run_cross_sample(config: CrossSampleConfig, show_progress: bool = True) -> list[dict[str, Any]]:
    """Decode and grade every (setting, shard) not on disk, then write the results table and report."""
    from rich.progress import Progress

    rows = read_rows(config)
    _check_tokenizers(config)  # here, not only in the workers: on Ray a mismatch would be a worker's traceback
    try:
        check_or_write_fingerprint(config.out_dir, config.fingerprint())
    except ValueError as error:  # another run's settings in --out
        raise UserError(str(error)) from error
    shards = [rows[i : i + config.shard_size] for i in range(0, len(rows), config.shard_size)]
    settings = plan_settings(config)
    written = 0
    with Progress(disable=not show_progress) as progress:
        for setting in settings:
            todo = [Task(setting, k, shard, _matched(config, setting, k)) for k, shard in enumerate(shards)
                    if not _shard_path(config, setting.name, k).exists()]
            bar = progress.add_task(f"{config.direction} {setting.name}", total=len(shards), completed=len(shards) - len(todo))
            with kept_on_failure(config.out_dir, lambda: written):
                for task, records in map_shards(CrossSampleWorker, (config,), todo, config.workers):
                    path = _shard_path(config, task.setting.name, task.shard)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, "".join(json.dumps(r) + "\n" for r in records).encode())
                    written += 1
                    kill_after_shard_test_hook(written)
                    progress.advance(bar)
    records = {s.name: read_records(config, s.name) for s in settings}
    check_not_all_failed([r["reason"] for rs in records.values() for r in rs], "error", (
        f"the verifier could not check any of them, so accuracy would be a silent 0; check that --answer-column "
        f"holds the ground truths (the decoded shards are kept in {config.out_dir}: fix it and rerun the same command)"))
    table = results_table(config, settings, records)
    (config.out_dir / "results.json").write_text(json.dumps(table, indent=2))
    from sparse_rlvr.interventions.report import write_report

    write_report(config, table, records)
    return table


def _check_tokenizers(config: CrossSampleConfig) -> None:
    """Both models share one tokenizer: checked in seconds, before any model is loaded."""
    from sparse_rlvr.core.models import check_same_tokenizer, load_tokenizer

    check_same_tokenizer(load_tokenizer(config.base), load_tokenizer(config.policy), config.base, config.policy)


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
