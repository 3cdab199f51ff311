"""sparse_rlvr: see and steer what RLVR (GRPO, DAPO) changes in a language model, token by token.

Layout (each folder one part of the product):
- ``divergence``: shared core, exact per-token divergence between two next-token distributions.
- ``rewards``: shared core, verifiable math-answer rewards.
- ``training``: plugins for verl (CPU platform, rollout, estimators, token-shift monitor).
- ``analysis``: offline token-shift statistics between a base and an RL checkpoint.
- ``interventions``: cross-sampling between a base and an RL model.
"""

__version__ = "0.1.0"
