"""Training plugins for verl.

- ``weighting``: the divergence weights and token masks (pure tensor math, no verl).
- ``config``: the run's validated ``sparse_rlvr`` config section.
- ``monitor``: token-shift statistics, histograms, heatmaps and the RL Logging Board dump.
- ``verl_glue``: everything that touches verl (registration, worker, trainer, rollout, CPU platform).
"""
