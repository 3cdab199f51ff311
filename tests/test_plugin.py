"""The verl plugin entry point: `import verl` in a fresh process registers our components."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

CHECK = """
import verl
from verl.trainer.ppo import core_algos
from sparse_rlvr.plugin import REGISTERED
core_algos.get_adv_estimator_fn("divergence_weighted")
core_algos.get_policy_loss_fn("divergence_weighted")
print(sorted(REGISTERED))
"""


def test_entry_point_is_installed():
    names = {ep.name: ep.value for ep in entry_points(group="verl.plugins")}
    assert names.get("sparse_rlvr") == "sparse_rlvr.plugin", "reinstall: bash scripts/setup.sh dev"


def test_import_verl_registers_our_components_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout
    assert "divergence_weighted" in out and "sparse_rlvr_math" in out


def test_plugins_disabled_means_nothing_registered():
    env_check = "import os, verl; from verl.trainer.ppo import core_algos; print('divergence_weighted' in core_algos.ADV_ESTIMATOR_REGISTRY)"
    out = subprocess.run([sys.executable, "-c", env_check], capture_output=True, text=True, check=True,
                         env={"VERL_USE_EXTERNAL_PLUGINS": "none", "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip().endswith("False")


def test_importing_our_algorithms_first_still_registers_everything():
    """`import sparse_rlvr.training.verl_glue.registered_algorithms` imports verl, whose plugin loader re-enters our package."""
    check = (
        "import sparse_rlvr.training.verl_glue.registered_algorithms\n"
        "from verl.trainer.ppo import core_algos\n"
        "from sparse_rlvr.plugin import REGISTERED\n"
        "core_algos.get_adv_estimator_fn('divergence_weighted')\n"
        "print(sorted(REGISTERED))\n"
    )
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert "sparse_rlvr_math" in run.stdout and "'hf'" in run.stdout
    assert "could not register" not in run.stderr, run.stderr[-2000:]
