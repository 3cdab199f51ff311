"""Divergence-weighting ablations: one verl run per grid point, one after another, resumable.

Command::

    sparse-rlvr ablate --config-name dapo_qwen2p5_math_7b --scale 0,0.5,1 --alpha 20,-20 \\
        --source js,kl_ref --mask none,divergence,entropy --seeds 1,2 [--dry-run] [hydra overrides...]

The grid is seeds x scale x alpha x source x mask x rho. Points that train identically run once:
    alpha matters only when scale > 0 (w = 1 + s * (sigmoid(alpha * D) - 1/2) is 1 at s = 0);
    source matters only when scale > 0 or mask = divergence (D is then read);
    rho matters only when mask != none.
So scale 0 with mask none is the single plain-GRPO/DAPO baseline per seed, whatever alpha and source.

Every run is ``python -m sparse_rlvr.train --config-name RECIPE [overrides] <its overrides>`` with
``trainer.experiment_name`` = its name (``dapo7b-s1-a20-js-none-seed1``: scale, alpha, source,
mask, [rho,] seed; fields that do not matter are left out), ``WANDB_RUN_GROUP`` = the sweep name
and ``WANDB_TAGS`` = its settings (set in the run's environment and in the Ray workers'), so W&B
groups and filters the sweep. A manifest JSON (``runs/sweeps/<sweep>/manifest.json`` by default)
is rewritten after every status change; rerunning the same command skips the runs whose process
exited 0 and reruns the others (verl itself resumes a rerun from its last checkpoint).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Callable, Optional, Sequence

import typer

from sparse_rlvr.core.errors import UserError
from sparse_rlvr.core.run_files import atomic_write

WEIGHTING_KEYS = ("scale", "alpha", "source", "mask", "rho")
SEED_KEYS = ("data.seed", "actor_rollout_ref.actor.data_loader_seed", "actor_rollout_ref.rollout.seed")
"""What a seed sets: the data-loader shuffle, the PPO mini-batch shuffle and the rollout sampler's seed."""
RUN_ENV_PREFIX = "++ray_kwargs.ray_init.runtime_env.env_vars"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _num(value: float) -> str:
    """Compact number for run names: 1.0 -> "1", 0.5 -> "0.5", -20.0 -> "-20"."""
    return f"{value:g}"


@dataclass(frozen=True)
class AblationRun:
    """One grid point, with the settings that do not change training set to None."""

    scale: float
    alpha: float | None
    source: str | None
    mask: str
    rho: float | None
    seed: int | None

    def name(self, prefix: str) -> str:
        """``{prefix}-s1-a20-js-none-seed1``; irrelevant fields are left out (``{prefix}-s0-none-seed1``)."""
        parts = [prefix, f"s{_num(self.scale)}"]
        parts += [f"a{_num(self.alpha)}"] if self.alpha is not None else []
        parts += [self.source] if self.source is not None else []
        parts += [self.mask]
        parts += [f"rho{_num(self.rho)}"] if self.rho is not None else []
        parts += [f"seed{self.seed}"] if self.seed is not None else []
        return "-".join(parts)

    def overrides(self) -> list[str]:
        """Hydra overrides of the ``sparse_rlvr.weighting`` section (and the seeds) for this run."""
        values = {"scale": self.scale, "alpha": self.alpha, "source": self.source, "mask": self.mask, "rho": self.rho}
        result = [f"sparse_rlvr.weighting.{key}={_value(value)}" for key, value in values.items() if value is not None]
        return result + ([f"{key}={self.seed}" for key in SEED_KEYS] if self.seed is not None else [])

    def tags(self, sweep: str) -> list[str]:
        """W&B tags: the sweep and every setting that matters."""
        settings = {k: v for k, v in asdict(self).items() if v is not None}
        return [f"sweep={sweep}"] + [f"{key}={_num(v) if isinstance(v, float) else v}" for key, v in settings.items()]


def _value(value: float | str) -> str:
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)


def canonical_run(scale: float, alpha: float, source: str, mask: str, rho: float, seed: int | None) -> AblationRun:
    """The grid point with settings that cannot change training blanked out (see the module docstring)."""
    return AblationRun(
        scale=float(scale),
        alpha=float(alpha) if scale != 0 else None,
        source=source if scale != 0 or mask == "divergence" else None,
        mask=mask,
        rho=float(rho) if mask != "none" else None,
        seed=seed,
    )


def ablation_grid(
    scales: Sequence[float],
    alphas: Sequence[float],
    sources: Sequence[str],
    masks: Sequence[str],
    rhos: Sequence[float] = (0.2,),
    seeds: Sequence[int | None] = (None,),
) -> list[AblationRun]:
    """The deduplicated runs, seed-major (all settings for the first seed come first).

    Every combination is validated by ``WeightingConfig`` (ValueError naming the bad value).
    """
    from sparse_rlvr.training.weighting import WeightingConfig

    lists = {"scale": scales, "alpha": alphas, "source": sources, "mask": masks, "rho": rhos, "seeds": seeds}
    for name, values in lists.items():
        if not values:
            raise ValueError(f"--{name} needs at least one value")
    runs: dict[AblationRun, None] = {}
    for seed, scale, alpha, source, mask, rho in itertools.product(seeds, scales, alphas, sources, masks, rhos):
        WeightingConfig(scale=scale, alpha=alpha, source=source, mask=mask, rho=rho)
        runs.setdefault(canonical_run(scale, alpha, source, mask, rho, seed))
    return list(runs)


def parse_list(text: str, option: str, kind: Callable = float) -> list:
    """``"0,0.5,1"`` -> [0.0, 0.5, 1.0]; ValueError naming the option for an empty or malformed item."""
    items = [item.strip() for item in str(text).split(",")]
    if any(not item for item in items):
        raise ValueError(f"{option}: empty value in {text!r} (use a comma-separated list such as 0,0.5,1)")
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a comma-separated list of {kind.__name__} values") from None


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0].strip()


def check_extra_overrides(overrides: Sequence[str], with_seeds: bool) -> None:
    """Refuse overrides of what the sweep itself sets (they would silently fight the grid)."""
    owned = {f"sparse_rlvr.weighting.{k}" for k in WEIGHTING_KEYS} | {"trainer.experiment_name", "weighting"}
    owned |= set(SEED_KEYS) if with_seeds else set()
    clashes = [o for o in overrides if _override_key(o) in owned]
    if clashes:
        raise ValueError(
            f"the sweep sets these itself, remove them: {clashes} (use --scale/--alpha/--source/--mask/--rho/--seeds)"
        )


def estimator_overrides(extra: Sequence[str]) -> list[str]:
    """``algorithm.adv_estimator=divergence_weighted`` unless the user's overrides pick the estimator
    or the loss (the loss-time variant then needs a plain estimator: ``check_run_configs`` says so)."""
    keys = {_override_key(o) for o in extra}
    chosen = {"algorithm.adv_estimator", "actor_rollout_ref.actor.policy_loss.loss_mode"} & keys
    return [] if chosen else ["algorithm.adv_estimator=divergence_weighted"]


def run_overrides(run: AblationRun, name: str, sweep: str, extra: Sequence[str]) -> list[str]:
    """All Hydra overrides of one run: the user's extras, the estimator, the name, W&B grouping, the grid point."""
    env = [f'{RUN_ENV_PREFIX}.{key}="{value}"' for key, value in wandb_env(run, sweep).items()]  # quoted: stays a string
    return [*extra, *estimator_overrides(extra), f"trainer.experiment_name={name}", *env, *run.overrides()]


def check_run_configs(config_name: str, runs: Sequence[AblationRun], extra: Sequence[str]) -> None:
    """Refuse, before the first run, a sweep that ``sparse-rlvr train`` would refuse run by run.

    The recipe is composed once with the user's overrides and the estimator; each run's weighting
    then goes through train's own check (``training.config.check_run_config``): e.g. the loss-time
    variant on a recipe whose estimator already weights (weights twice), or masks it ignores.
    """
    from sparse_rlvr.training.config import PluginConfig, check_run_config
    from sparse_rlvr.training.verl_glue.launch import compose
    from sparse_rlvr.training.weighting import WeightingConfig

    try:
        config = compose(config_name, [*extra, *estimator_overrides(extra)])
    except Exception as error:  # Hydra's errors for a missing recipe or a bad override
        raise ValueError(f"--config-name {config_name} with {list(extra)}: {error}") from None
    plugin = PluginConfig.from_config(config.get("sparse_rlvr"))
    for run in runs:
        weighting = {key: value for key in WEIGHTING_KEYS if (value := getattr(run, key)) is not None}
        run_plugin = PluginConfig(plugin.enable, WeightingConfig(**{**asdict(plugin.weighting), **weighting}), plugin.monitor)
        try:
            check_run_config(config, run_plugin)
        except ValueError as error:
            raise ValueError(f"{run.name(config_name)}: {error}") from None


def wandb_env(run: AblationRun, sweep: str) -> dict[str, str]:
    """W&B reads these in ``wandb.init``: the sweep groups its runs, tags hold the settings."""
    return {"WANDB_RUN_GROUP": sweep, "WANDB_TAGS": ",".join(run.tags(sweep))}


# --------------------------------------------------------------------------- manifest


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Manifest:
    """The sweep's JSON record, rewritten atomically after every change."""

    def __init__(self, path: Path, data: dict) -> None:
        self.path, self.data = path, data

    @classmethod
    def load(cls, path: Path, sweep: str, config_name: str, extra: Sequence[str]) -> Manifest:
        """The manifest at `path`, or a new empty one; refuses one written by a different sweep setting."""
        if not path.exists():
            return cls(path, {"sweep": sweep, "config_name": config_name, "extra_overrides": list(extra),
                              "created": _now(), "runs": {}})
        data = json.loads(path.read_text())
        mine = {"sweep": sweep, "config_name": config_name, "extra_overrides": list(extra)}
        theirs = {key: data.get(key) for key in mine}
        if theirs != mine:
            raise ValueError(f"{path} belongs to a sweep with {theirs}, this one is {mine}: "
                             "use another --sweep-name (or --manifest) for a different sweep")
        return cls(path, data)

    def status(self, name: str) -> str | None:
        return self.data["runs"].get(name, {}).get("status")

    def update(self, name: str, **fields) -> None:
        self.data["runs"].setdefault(name, {}).update(fields)
        self.data["updated"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, (json.dumps(self.data, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- running


class SweepFailed(RuntimeError):
    """A run exited non-zero (and the sweep was not told to keep going)."""


@dataclass
class SweepResult:
    finished: list[str]
    skipped: list[str]
    failed: list[str]
    planned: list[str]


def default_train_command() -> list[str]:
    return [sys.executable, "-m", "sparse_rlvr.train"]


def _run_child(command: list[str], env: dict[str, str], log_path: Path | None = None) -> int:
    """Run to completion (output to `log_path` if given); on Ctrl-C let the child (which got SIGINT too) shut down
    before giving up on it."""
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            return _wait_child(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    return _wait_child(subprocess.Popen(command, env=env))


def _wait_child(process: subprocess.Popen) -> int:
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
        raise


def run_sweep(
    config_name: str,
    runs: Sequence[AblationRun],
    *,
    sweep: str,
    name_prefix: str,
    manifest_path: Path,
    extra_overrides: Sequence[str] = (),
    train_command: Sequence[str] | None = None,
    dry_run: bool = False,
    keep_going: bool = False,
    echo: Callable[[str], None] = print,
    log_dir: Path | None = None,
    run_env: dict[str, str] | None = None,
) -> SweepResult:
    """Launch (or, with `dry_run`, print) every run not yet finished according to the manifest.

    `train_command` replaces ``python -m sparse_rlvr.train`` (tests pass a fake one). A run counts
    as finished when its process exited 0; a failed one stops the sweep (SweepFailed) unless
    `keep_going`. The manifest is not written in a dry run. With `log_dir`, each run's output goes to
    `log_dir/<run name>.log` instead of the console; `run_env` is added to every run's environment.
    """
    for label, value in (("sweep name", sweep), ("name prefix", name_prefix)):
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(f"{label} {value!r}: use letters, digits, '.', '_' and '-' only")
    check_extra_overrides(extra_overrides, with_seeds=any(run.seed is not None for run in runs))
    manifest = Manifest.load(manifest_path, sweep, config_name, extra_overrides)
    base = list(train_command or default_train_command()) + ["--config-name", config_name]
    result = SweepResult([], [], [], [run.name(name_prefix) for run in runs])
    for number, run in enumerate(runs, 1):
        name = run.name(name_prefix)
        env = wandb_env(run, sweep)
        command = base + run_overrides(run, name, sweep, extra_overrides)
        header = f"[{number}/{len(runs)}] {name}"
        if manifest.status(name) == "finished":
            result.skipped.append(name)
            echo(f"{header}: finished before, skipped")
            continue
        if dry_run:
            echo(f"{header}\n  {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} {shlex.join(command)}")
            continue
        echo(f"{header}: starting")
        manifest.update(name, status="running", started=_now(), command=command, env=env, weighting=asdict(run))
        try:
            code = _run_child(command, {**os.environ, **(run_env or {}), **env}, log_dir / f"{name}.log" if log_dir else None)
        except KeyboardInterrupt:
            manifest.update(name, status="interrupted", ended=_now())
            raise
        manifest.update(name, status="finished" if code == 0 else "failed", returncode=code, ended=_now())
        (result.finished if code == 0 else result.failed).append(name)
        echo(f"{header}: {'finished' if code == 0 else f'failed (exit {code})'}")
        if code != 0 and not keep_going:
            raise SweepFailed(f"{name} exited {code}; fix it and rerun the same command to resume ({manifest_path})")
    return result


# --------------------------------------------------------------------------- command


def ablate_command(
    config_name: Annotated[
        str, typer.Option("--config-name", help="Recipe in sparse_rlvr/recipes/, e.g. dapo_qwen2p5_math_7b.", show_default=False)
    ],
    scale: Annotated[str, typer.Option(help="Comma-separated s values in [0, 2]; 0 = plain advantages.")] = "0,1",
    alpha: Annotated[
        str, typer.Option(help="Comma-separated sigmoid slopes: > 0 boosts high-divergence tokens, < 0 low ones.")
    ] = "20,-20",
    source: Annotated[str, typer.Option(help="Comma-separated divergences: js, kl_ref, kl_ref_reverse.")] = "js",
    mask: Annotated[str, typer.Option(help="Comma-separated token masks: none, divergence, entropy.")] = "none",
    rho: Annotated[str, typer.Option(help="Comma-separated fractions of tokens a mask keeps, in (0, 1].")] = "0.2",
    seeds: Annotated[
        Optional[str], typer.Option(help="Comma-separated seeds (data order, mini-batches, sampling); default: the recipe's.")
    ] = None,
    sweep_name: Annotated[
        Optional[str], typer.Option(help="W&B group and manifest folder; default: <name-prefix>-ablation.")
    ] = None,
    name_prefix: Annotated[
        Optional[str], typer.Option(help="Start of every run name, e.g. dapo7b; default: the recipe name.")
    ] = None,
    manifest: Annotated[
        Optional[Path], typer.Option(help="Manifest JSON; default: runs/sweeps/<sweep-name>/manifest.json.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the runs and their commands; launch nothing.")] = False,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Go on to the next run when one fails.")] = False,
    overrides: Annotated[
        Optional[list[str]],
        typer.Argument(help="Hydra overrides for every run, e.g. trainer.total_training_steps=100.", show_default=False),
    ] = None,
) -> None:
    """Sweep divergence weighting (scale x alpha x source x mask x rho x seed) as sequential verl runs.

    Runs that would train identically are launched once: scale 0 ignores alpha and source, mask none ignores rho.

    Each run is named like dapo7b-s1-a20-js-none-seed1 and grouped in W&B by the sweep name.

    A manifest records every run: rerunning the same command skips the finished ones.

    A single negative value is written --alpha=-20 or --alpha -20.
    """
    prefix = name_prefix or config_name
    sweep = sweep_name or f"{prefix}-ablation"
    try:
        runs = ablation_grid(
            parse_list(scale, "--scale"), parse_list(alpha, "--alpha"), parse_list(source, "--source", str),
            parse_list(mask, "--mask", str), parse_list(rho, "--rho"),
            parse_list(seeds, "--seeds", int) if seeds is not None else [None],
        )
        check_run_configs(config_name, runs, list(overrides or []))
        path = manifest or Path("runs") / "sweeps" / sweep / "manifest.json"
        typer.echo(f"sweep {sweep}: {len(runs)} runs of {config_name}; manifest {path}")
        result = run_sweep(config_name, runs, sweep=sweep, name_prefix=prefix, manifest_path=path,
                           extra_overrides=list(overrides or []), dry_run=dry_run, keep_going=keep_going, echo=typer.echo)
    except ValueError as error:  # printed as `error: ...`, exit 2, by the entry point (core.errors)
        raise UserError(str(error)) from error
    except SweepFailed as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if not dry_run:
        typer.echo(f"done: {len(result.finished)} finished, {len(result.skipped)} skipped, {len(result.failed)} failed")
        if result.failed:
            raise typer.Exit(1)
