"""sparse_rlvr: see and steer what RLVR (GRPO, DAPO) changes in a language model, token by token.

Layout (imports only point down this list; analysis and interventions never import each other):
- ``workflows``: what a user runs end to end (demos, data preparation, ablations, tiny assets).
- ``training``: plugins for verl: ``weighting`` (pure math), ``monitor`` (token-shift metrics and
  media), ``verl_glue`` (everything that touches verl: registration, worker, trainer, rollout, CPU).
- ``analysis``: offline token-shift statistics between a base and an RL checkpoint.
- ``interventions``: cross-sampling between a base and an RL model.
- ``core``: shared by every part: exact divergence, answer verification, model/table loading,
  sampling, shift statistics, run files.
"""

__version__ = "0.1.0"
