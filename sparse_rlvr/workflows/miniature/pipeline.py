"""The paper in miniature, end to end through the product, as resumable stages under OUT.

    base          train the base model in code, write the task's verl parquet   OUT/base/{model,train,test}
    grpo          GRPO through verl's trainer on CPU (recipe grpo_miniature_cpu) OUT/grpo/ (checkpoints, metrics), OUT/wandb
    shift         `sparse-rlvr shift` base vs every checkpoint, on RL samples    OUT/shift/
    cross_sample  `sparse-rlvr cross-sample` forward and reverse, random controls OUT/cross_sample/{forward,reverse}/
    ablation      (--full) `sparse-rlvr ablate`: weighting settings x seeds      OUT/ablation/
    report        the findings                                                  OUT/results.json, OUT/report.html

A rerun skips finished stages (stages.py); an interrupted one resumes inside its tool (verl from
its last checkpoint, shift and cross-sample from their written shards).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sparse_rlvr.core.run_files import atomic_write
from sparse_rlvr.workflows.miniature import findings, task
from sparse_rlvr.workflows.miniature.base_model import BaseModelConfig
from sparse_rlvr.workflows.miniature.stages import StageDir

RECIPE = "grpo_miniature_cpu"
EXPERIMENT = "grpo_miniature"
PROJECT = "sparse_rlvr_miniature"
MAX_NEW_TOKENS = 32


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of every stage; the defaults are the main job's (< 10 minutes on 2 cores)."""

    base: BaseModelConfig = field(default_factory=BaseModelConfig)
    train_prompts: int = 2000
    test_prompts: int = 200
    grpo_steps: int = 15
    grpo_lr: float = 3e-4
    save_freq: int = 5
    test_freq: int = 5
    val_samples: int = 1
    shift_samples: int = 4
    cross_samples: int = 2
    eps: tuple[float, ...] = (0.001, 0.01, 0.1)
    ablation_seeds: tuple[int, ...] = (1, 2, 3)
    ablation_steps: int = 10
    ablation_target: float = 0.9
    seed: int = 0

    @classmethod
    def reduced(cls) -> DemoSettings:
        """The acceptance test's run: the main job's base model and GRPO (a shorter run did not learn clearly:
        1,800 base steps and 12 GRPO steps gave 0.705 -> 0.77), fewer samples to analyse and two eps."""
        return cls(shift_samples=2, eps=(0.01, 0.1), ablation_seeds=(1,))


ABLATION_SETTINGS: dict[str, dict[str, Any]] = {
    "plain GRPO": {"scale": 0.0, "mask": "none"},
    "high-JS boost": {"scale": 1.0, "alpha": 20.0, "mask": "none"},
    "low-JS boost": {"scale": 1.0, "alpha": -20.0, "mask": "none"},
    "top-rho by JS": {"scale": 0.0, "mask": "divergence", "rho": 0.2},
    "top-rho by entropy": {"scale": 0.0, "mask": "entropy", "rho": 0.2},
}
"""The --full ablation: the paper's weightings (w = 1 + s (sigmoid(alpha JS) - 1/2)) and the top-rho masks."""


class Display:
    """Per-stage progress on the console (Rich), or silence (tests)."""

    def __init__(self, console: Any | None) -> None:
        self.console = console

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def bar(self, description: str, total: int) -> tuple[Callable[[int, str], None], Callable[[], None]]:
        """(update(completed, note), close()) of one progress bar."""
        if self.console is None:
            return (lambda done, note="": None), (lambda: None)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[note]}"), console=self.console, transient=False)
        progress.start()
        handle = progress.add_task(description, total=total, note="")
        return (lambda done, note="": progress.update(handle, completed=done, note=note)), progress.stop


class Pipeline:
    """One run directory and its stages."""

    def __init__(self, out: Path, settings: DemoSettings, display: Display, train_command: list[str] | None = None) -> None:
        self.train_command = train_command  # replaces `python -m sparse_rlvr.train` in the ablation (tests)
        self.out = out.resolve()
        self.settings = settings
        self.display = display
        pinned = {k: v for k, v in _jsonable(asdict(settings)).items() if not k.startswith("ablation_")}
        self.stages = StageDir(self.out, pinned)  # the ablation's settings are pinned by its own manifest
        self.base_dir = self.out / "base"

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    def run(self, full: bool = False) -> dict[str, Any]:
        """Every stage not yet finished, then results.json and report.html; returns the results."""
        start = time.perf_counter()
        walls: dict[str, float] = {}
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("base", self.base_stage), ("grpo", self.grpo_stage), ("shift", self.shift_stage),
            ("cross_sample", self.cross_sample_stage)]
        if full:
            steps.append(("ablation", self.ablation_stage))
        outcome = {}
        for name, work in steps:
            result, ran = self.stages.run(name, work)
            walls[name] = result["wall_s"]
            self.display.say(f"[bold]{name}[/bold]: {'done' if ran else 'finished before, skipped'} "
                             f"({result['wall_s']:.0f} s)")
            outcome[name] = result
        return self.report(outcome, walls, time.perf_counter() - start)

    # ----------------------------------------------------------------- stages

    def base_stage(self) -> dict[str, Any]:
        """Train the base model; write it and the task's train/test parquet."""
        from sparse_rlvr.workflows.miniature.base_model import train_base

        config = self.settings.base
        update, close = self.display.bar("base model (supervised, both strategies at the forks)", config.steps)
        try:
            trained = train_base(config, lambda step, total, loss: update(step, f"loss {loss:.3f}"))
        finally:
            close()
        staging = self.base_dir / "model.partial"
        trained.save(staging)
        if self.model_dir.exists():  # left by a run stopped before this stage's marker was written
            shutil.rmtree(self.model_dir)
        staging.replace(self.model_dir)
        tokenizer = trained.tokenizer
        s = self.settings
        task.write_parquet(task.rl_rows(task.make_problems(s.train_prompts, s.seed, "train"), tokenizer, "train"),
                           self.base_dir / "train.parquet")
        task.write_parquet(task.rl_rows(task.make_problems(s.test_prompts, s.seed + 1, "test"), tokenizer, "test"),
                           self.base_dir / "test.parquet")
        return {"final_loss": trained.losses[-1], "losses_every_50": trained.losses[::50], "train_wall_s": trained.wall_s}

    def grpo_overrides(self, steps: int, seed: int, save_freq: int, logger: str = "[console,file,wandb]") -> list[str]:
        s = self.settings
        return [
            f"trainer.total_training_steps={steps}", f"trainer.save_freq={save_freq}", f"trainer.test_freq={s.test_freq}",
            f"actor_rollout_ref.actor.optim.lr={s.grpo_lr}", f"actor_rollout_ref.rollout.val_kwargs.n={s.val_samples}",
            f"data.seed={seed}", f"actor_rollout_ref.rollout.seed={seed}", f"trainer.logger={logger}",
            f"trainer.project_name={PROJECT}",
        ]

    def grpo_stage(self) -> dict[str, Any]:
        """GRPO through verl with the plugins; the accuracy curve and the checkpoints it kept."""
        from sparse_rlvr.workflows.recipe_run import run_recipe

        s = self.settings
        run_dir = self.out / "grpo"
        overrides = self.grpo_overrides(s.grpo_steps, s.seed, s.save_freq) + [
            f"trainer.experiment_name={EXPERIMENT}", f"sparse_rlvr.monitor.logging_board_dir={run_dir / 'logging_board'}"]
        metrics = run_dir / "metrics" / PROJECT / f"{EXPERIMENT}.jsonl"
        update, close = self.display.bar("GRPO through verl on CPU (Ray, FSDP2, hf rollout)", s.grpo_steps)
        watcher = _Watcher(metrics, lambda records: update(_last_step(records), _accuracy_note(records, s.val_samples)))
        try:
            with watcher:
                run = run_recipe(RECIPE, overrides, self.base_dir, run_dir, timeout_s=3600, env=self._wandb_env())
        finally:
            close()
        (run_dir / "train.log").write_text(run.log)
        if run.returncode != 0:
            raise RuntimeError(f"the GRPO run failed (exit {run.returncode}); verl's log: {run_dir / 'train.log'}\n"
                               f"{run.log[-2000:]}")
        curve = findings.accuracy_curve(run.records, s.val_samples)
        return {"accuracy_curve": curve, "checkpoints": [str(p) for p in self.checkpoints()],
                "step_seconds": [r["data"]["timing_s/step"] for r in run.records if "timing_s/step" in r["data"]],
                "process_wall_s": run.wall_s}

    def checkpoints(self) -> list[Path]:
        """OUT/checkpoints/step_N, by step: links to the Hugging Face directories verl saved (made here)."""
        root, links = self.out / "grpo" / EXPERIMENT, self.out / "checkpoints"
        found = sorted((int(p.name.split("_")[-1]), p / "actor" / "huggingface") for p in root.glob("global_step_*"))
        links.mkdir(exist_ok=True)
        for step, path in found:
            link = links / f"step_{step}"
            if (path / "config.json").exists() and not link.exists():
                link.symlink_to(os.path.relpath(path, links))
        return [links / f"step_{step}" for step, _ in found if (links / f"step_{step}").exists()]

    def shift_stage(self) -> dict[str, Any]:
        """`sparse-rlvr shift` between the base and each checkpoint, on each checkpoint's own samples."""
        from sparse_rlvr.analysis.config import ShiftConfig
        from sparse_rlvr.analysis.runner import run_shift

        policies = [str(p) for p in self.checkpoints()]
        if not policies:
            raise RuntimeError(f"no Hugging Face checkpoint under {self.out / 'grpo'}; the GRPO stage saves one "
                               "every save_freq steps")
        config = ShiftConfig(
            base=str(self.model_dir), policies=policies, data=str(self.base_dir / "test.parquet"),
            out=str(self.out / "shift"), sequences="policy", generate=self.settings.shift_samples,
            temperature=1.0, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=self.settings.seed,
            batch_size=256, shard_size=100, top_k=5, report_samples=6,
        )
        config.check_inputs()
        self.display.say(f"sparse-rlvr shift: base vs {len(policies)} checkpoints, "
                         f"{self.settings.shift_samples} RL samples per held-out prompt")
        run_shift(config, show_progress=self.display.console is not None)
        return {"policies": policies, "out": config.out}

    def cross_sample_stage(self) -> dict[str, Any]:
        """`sparse-rlvr cross-sample` forward and reverse with the final checkpoint, each eps with a random control."""
        from sparse_rlvr.interventions.config import CrossSampleConfig
        from sparse_rlvr.interventions.runner import run_cross_sample

        policy = str(self.checkpoints()[-1])
        out = {}
        for direction in ("forward", "reverse"):
            config = CrossSampleConfig(
                base=str(self.model_dir), policy=policy, data=str(self.base_dir / "test.parquet"),
                out=str(self.out / "cross_sample" / direction), direction=direction, rule="js-threshold",
                eps=list(self.settings.eps), random_control=True, samples=self.settings.cross_samples,
                temperature=1.0, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=self.settings.seed,
                batch_size=256, shard_size=100,
            )
            config.check_inputs()
            self.display.say(f"sparse-rlvr cross-sample --direction {direction}")
            out[direction] = findings.cross_sampling_findings(
                run_cross_sample(config, show_progress=self.display.console is not None))
        return out

    def ablation_stage(self) -> dict[str, Any]:
        """`sparse-rlvr ablate`'s sweep runner over ABLATION_SETTINGS x seeds, each run's accuracy curve."""
        from sparse_rlvr.workflows.ablation import canonical_run, run_sweep

        s = self.settings
        root = self.out / "ablation"
        runs, names = [], {}
        for label, weighting in ABLATION_SETTINGS.items():
            for seed in s.ablation_seeds:
                run = canonical_run(weighting["scale"], weighting.get("alpha", 1.0), "js", weighting["mask"],
                                    weighting.get("rho", 0.2), seed)
                runs.append(run)
                names[run.name("mini")] = (label, seed)
        extra = [o for o in self.grpo_overrides(s.ablation_steps, s.seed, -1, "[console,file]")
                 if not o.startswith(("data.seed", "actor_rollout_ref.rollout.seed"))]
        update, close = self.display.bar("ablation: weighting x seeds (sequential verl runs)", len(runs))
        env = {"SPARSE_RLVR_TINY_DIR": str(self.base_dir), "SPARSE_RLVR_RUN_DIR": str(root / "runs"),
               "VERL_FILE_LOGGER_ROOT": str(root / "metrics"), "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "disabled"}
        done = 0

        def echo(line: str) -> None:
            nonlocal done
            done += line.endswith(("finished", "skipped"))
            update(done, line.split(":")[0])

        try:
            run_sweep(RECIPE, runs, sweep="miniature", name_prefix="mini", manifest_path=root / "manifest.json",
                      extra_overrides=extra, train_command=self.train_command, echo=echo, log_dir=root / "logs",
                      run_env=env)
        finally:
            close()
        table: dict[str, dict[str, Any]] = {}
        for name, (label, seed) in names.items():
            path = root / "metrics" / PROJECT / f"{name}.jsonl"
            records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            curve = findings.accuracy_curve(records, s.val_samples)
            row = table.setdefault(label, {"seeds": [], "final_accuracy": [], "steps_to_target": [], "curves": []})
            row["seeds"].append(seed)
            row["final_accuracy"].append(curve[-1][1] if curve else None)
            row["steps_to_target"].append(findings.steps_to_target(curve, s.ablation_target))
            row["curves"].append(curve)
        return {"settings": table}

    # ----------------------------------------------------------------- findings

    def report(self, outcome: dict[str, dict[str, Any]], walls: dict[str, float], wall_s: float) -> dict[str, Any]:
        """results.json and report.html from the stages' outputs."""
        from sparse_rlvr.analysis.store import read_tokens
        from sparse_rlvr.core.models import load_tokenizer
        from sparse_rlvr.core.tables import read_table
        from sparse_rlvr.workflows.miniature.report import fork_positions_by_kind, overview_figure, render
        from sparse_rlvr.workflows.miniature.story import story

        shift_dir = self.out / "shift"
        summary = json.loads((shift_dir / "summary.json").read_text())
        final_dir = sorted(p for p in shift_dir.iterdir() if p.is_dir())[-1]
        tokens = read_tokens(final_dir)
        rows = read_table(self.base_dir / "test.parquet").to_dict("records")
        samples = findings.sample_kinds(rows, self.settings.shift_samples)
        planted = findings.planted_forks(tokens, samples)
        cross = outcome["cross_sample"]
        curve = outcome["grpo"]["accuracy_curve"]
        results: dict[str, Any] = {
            "base_accuracy": cross["forward"]["primary_only_accuracy"],
            "rl_accuracy": cross["reverse"]["primary_only_accuracy"],
            "steps": int(curve[-1][0]) if curve else self.settings.grpo_steps,
            "wall_s": round(sum(walls.values()), 1),
            "wall_s_by_stage": walls,
            "accuracy_curve": curve,
            "shift": findings.shift_findings(summary, planted),
            "cross_sampling": {d: cross[d]["settings"] for d in ("forward", "reverse")},
            "js_by_position_and_kind": findings.js_by_position_and_kind(tokens, samples),
        }
        if "ablation" in outcome:
            results["ablation"] = outcome["ablation"]["settings"]
            results["ablation_target"] = self.settings.ablation_target
        atomic_write(self.out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
        tokenizer = load_tokenizer(str(self.model_dir))
        page = render(results | {"cross_sampling": cross}, summary, tokens, samples,
                      lambda i: tokenizer.decode([i]), story(results))
        atomic_write(self.out / "report.html", page.encode())
        atomic_write(self.out / "overview.png", overview_figure(results, cross, fork_positions_by_kind(samples)))
        return results

    def _wandb_env(self) -> dict[str, str]:
        return {"WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_DIR": str(self.out),
                "WANDB_SILENT": "true"}


class _Watcher:
    """Calls `on_records(records)` whenever verl's metrics file grows (display only; a background thread)."""

    def __init__(self, path: Path, on_records: Callable[[list[dict]], None], every_s: float = 1.0) -> None:
        self.path, self.on_records, self.every_s = path, on_records, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._poll()

    def _poll(self) -> None:
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line still being written
                break
        self.on_records(records)


def _last_step(records: list[dict]) -> int:
    return max((int(r["step"]) for r in records if "timing_s/step" in r["data"]), default=0)


def _accuracy_note(records: list[dict], val_n: int) -> str:
    curve = findings.accuracy_curve(records, val_n)
    return f"held-out accuracy {curve[0][1]:.2f} -> {curve[-1][1]:.2f}" if curve else "starting Ray and verl"


def _jsonable(value: Any) -> Any:
    """Tuples as lists, so the pinned settings compare equal after a JSON round trip."""
    return json.loads(json.dumps(value))


