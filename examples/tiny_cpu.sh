#!/usr/bin/env bash
# GRPO (with a reference model) and DAPO, 3 steps each, through verl's own trainer on a CPU.
# 2 cores, no GPU, about 1 minute per run. Metrics print on the console; checkpoints land in
# $SPARSE_RLVR_RUN_DIR/<experiment>/global_step_3; rerun with trainer.total_training_steps=5
# to resume from there.
set -euo pipefail
export SPARSE_RLVR_TINY_DIR=${SPARSE_RLVR_TINY_DIR:-/tmp/sparse_rlvr_tiny}
export SPARSE_RLVR_RUN_DIR=${SPARSE_RLVR_RUN_DIR:-/tmp/sparse_rlvr_runs}
export RAY_AUTH_MODE=disabled
python -m sparse_rlvr.training.launch make-tiny "$SPARSE_RLVR_TINY_DIR"
python -m sparse_rlvr.training.launch train --config-name grpo_tiny_cpu
python -m sparse_rlvr.training.launch train --config-name dapo_tiny_cpu
