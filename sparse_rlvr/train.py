"""``python -m sparse_rlvr.train [--config-name RECIPE] [hydra overrides...]``: verl's PPO trainer with sparse_rlvr.

The same as ``sparse-rlvr train``. Recipes live in ``sparse_rlvr/recipes/`` and extend verl's ``ppo_trainer``,
so every verl override works; sparse_rlvr's own options are under ``sparse_rlvr.*``
(sparse_rlvr/recipes/_sparse_rlvr_defaults.yaml). Without --config-name the config is verl's ppo_trainer
plus that section (``sparse_rlvr/recipes/sparse_rlvr_trainer.yaml``).
"""

from __future__ import annotations

import sys

from sparse_rlvr.core.errors import run_reporting_user_errors
from sparse_rlvr.training.verl_glue.launch import DEFAULT_CONFIG, train


def main(argv: list[str] | None = None) -> None:
    """Parse ``--config-name NAME`` / ``--config-name=NAME``; everything else is a Hydra override."""
    args = list(sys.argv[1:] if argv is None else argv)
    config_name = DEFAULT_CONFIG
    overrides = []
    while args:
        arg = args.pop(0)
        if arg in ("--config-name", "-cn"):
            if not args:
                raise SystemExit("--config-name needs a recipe name (a file in sparse_rlvr/recipes/ without .yaml)")
            config_name = args.pop(0)
        elif arg.startswith("--config-name="):
            config_name = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(__doc__)
            return
        else:
            overrides.append(arg)
    train(config_name, overrides)


if __name__ == "__main__":
    run_reporting_user_errors(main)
