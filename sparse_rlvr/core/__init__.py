"""Shared core: what training, analysis and interventions all need. Imports no part of the package.

- ``divergence``: exact per-token JS/KL/entropy/rank statistics between two next-token distributions.
- ``verification``: math-answer grading that never hangs and never executes model text.
- ``models``, ``tables``: loading checkpoints/tokenizers and prompt/response tables.
- ``sampling``: the one nucleus (top-p) filter and next-token sampler.
- ``shift_stats``: percentiles and position/entropy bins reported by the monitor and the report alike.
- ``js_scale``: the one JS colour scale (W&B heatmaps and report.html).
- ``run_files``, ``parallel``: atomic, resumable run files; shards in-process or over Ray.
"""
