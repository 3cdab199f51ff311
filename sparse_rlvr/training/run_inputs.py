"""Check the files a training recipe names (model, train/val data) before Ray and verl start.

verl would find a missing file only inside a Ray worker, minutes later, under a traceback.
"""

from __future__ import annotations

from typing import Any

from sparse_rlvr.core.inputs import check_model, check_table_file


def check_run_inputs(config: Any) -> None:
    """actor_rollout_ref.model.path is a checkpoint or hub id; data.train_files/val_files exist (UserError)."""
    check_model(str(config.actor_rollout_ref.model.path), "actor_rollout_ref.model.path")
    for key in ("train_files", "val_files"):
        files = config.data.get(key)
        if files is None:
            continue
        for path in [files] if isinstance(files, str) else list(files):
            if "://" not in str(path):  # local files only: hdfs:// and the like are verl's to fetch
                check_table_file(str(path), f"data.{key}")
