"""The paper in miniature (issue 15): a synthetic task with planted forks and a base model trained on CPU.

``task``: mod-10 arithmetic prompts, the precedence and left-to-right responses, fork positions,
verl parquet rows. ``base_model``: supervised training of a tiny Qwen2 on a 50/50 strategy mix.
``evaluate``: sampled accuracy graded by the project's math verifier.
"""
