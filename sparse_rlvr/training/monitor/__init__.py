"""The token-shift monitor: per-step statistics, W&B media and the RL Logging Board dump.

Turns per-token tensors into metrics and files; verl itself is reached only through ``verl_glue``."""
