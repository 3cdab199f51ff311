"""The package installs like one: a non-editable wheel install runs every recipe from package data.

Clusters install sparse_rlvr from an index or inside an image, not as an editable checkout, so
nothing may find its files through the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_RECIPES = sorted(str(p.relative_to(REPO / "sparse_rlvr" / "recipes")) for p in (REPO / "sparse_rlvr" / "recipes").rglob("*.yaml"))

COMPOSE_EVERY_RECIPE = """
import json
from omegaconf import OmegaConf
import sparse_rlvr
from sparse_rlvr.training.verl_glue.launch import RECIPES_DIR, compose
shipped = sorted(str(p.relative_to(RECIPES_DIR)) for p in RECIPES_DIR.rglob("*.yaml"))
composed = {}
for path in RECIPES_DIR.glob("*.yaml"):
    if path.name.startswith("_"):
        continue  # fragments, composed through the recipes that include them
    config = compose(path.stem, [])
    composed[path.stem] = OmegaConf.select(config, "actor_rollout_ref.rollout.name", default=None, throw_on_missing=False)
print(json.dumps({"package": sparse_rlvr.__file__, "recipes_dir": str(RECIPES_DIR), "shipped": shipped, "composed": composed}))
"""


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """sparse_rlvr built as a wheel and installed (no deps, non-editable) into a scratch directory."""
    scratch = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(scratch / "dist"), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    wheels = list((scratch / "dist").glob("sparse_rlvr-*.whl"))
    assert len(wheels) == 1, wheels
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(scratch / "site"), str(wheels[0])],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return scratch / "site"


def test_the_wheel_ships_every_recipe_and_composes_each_from_the_install(installed_wheel: Path, tmp_path: Path) -> None:
    # run from an empty directory with the install first on the path: the source tree is out of reach
    env = os.environ | {"PYTHONPATH": str(installed_wheel)}
    out = subprocess.run(
        [sys.executable, "-c", COMPOSE_EVERY_RECIPE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(installed_wheel), result["package"]
    assert Path(result["recipes_dir"]).is_relative_to(installed_wheel)
    assert result["shipped"] == SOURCE_RECIPES
    assert set(result["composed"]) == {Path(r).stem for r in SOURCE_RECIPES if "/" not in r and not r.startswith("_")}
    assert result["composed"]["grpo_qwen2p5_math_7b"] == "vllm" and result["composed"]["grpo_tiny_cpu"] == "hf"


BUILD_THE_CPU_KERNEL = """
import json, torch
from sparse_rlvr.core.divergence import cpu_kernel, token_divergence
op = cpu_kernel.row_sums_op()
g = torch.Generator().manual_seed(0)
base = torch.randn(8, 300, generator=g)
policy = base + torch.randn(8, 300, generator=g)
fast, eager = token_divergence(base, policy, compiled=True), token_divergence(base, policy, compiled=False)
print(json.dumps({"source": str(cpu_kernel.SOURCE), "built": op is not None, "error": cpu_kernel._state.get("error"),
                  "js_diff": float((fast.js - eager.js).abs().max())}))
"""


def test_the_wheel_ships_the_cpu_kernel_and_builds_it_from_the_install(installed_wheel: Path, tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(installed_wheel), "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions")}
    env.pop("SPARSE_RLVR_DIVERGENCE_CPU_KERNEL", None)
    out = subprocess.run(
        [sys.executable, "-c", BUILD_THE_CPU_KERNEL], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["source"]).is_relative_to(installed_wheel), result["source"]
    assert result["built"], result["error"]
    assert result["js_diff"] < 2e-6
