"""The settings every resumable model run shares (`shift`, `cross-sample`), documented and checked once.

A field is declared with `option(help, default, ...)`: the help text lives on the field, where
both the code and the derived command line (`core.config_cli`) read it. `RunConfig` holds the
shared fields (models, data columns, sampling, batching, sharding, dtype, workers, seed) and
their validation; a command's config subclasses it, adds its own fields, and may `redefine` a
shared field's default or help. Errors name the key, its command-line flag and what to set.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

GROUPS = ("models", "data", "method", "sampling", "run")
"""Order of the options in `--help`: by group, then as declared."""
DTYPES = ("auto", "float32", "bfloat16", "float16")


def option(
    help: str,
    default: Any = MISSING,
    *,
    default_factory: Any = MISSING,
    group: str = "method",
    flag: str | None = None,
    path: bool = False,
) -> Any:
    """A dataclass field that documents itself.

    Args:
        help: what the field does, its allowed values and where it comes from (shown by --help).
        default, default_factory: as in `dataclasses.field`; neither makes the field required.
        group: one of GROUPS; orders the options in --help.
        flag: command-line name without the dashes when it differs from the field name
            (`policies` -> `policy`, repeated once per value).
        path: the option takes a path (shown as PATH; stored as str).
    """
    if group not in GROUPS:
        raise ValueError(f"option group must be one of {', '.join(GROUPS)}, got {group!r}")
    metadata = {"help": help, "group": group, "flag": flag, "path": path}
    return field(default=default, default_factory=default_factory, metadata=metadata)


def redefine(config_class: type, name: str, *, default: Any = MISSING, help: str | None = None) -> Any:
    """`config_class`'s field `name` with another default and/or help (the rest is kept)."""
    base = next(f for f in fields(config_class) if f.name == name)
    metadata = dict(base.metadata) | ({"help": help} if help is not None else {})
    if default is MISSING:
        return field(default=base.default, default_factory=base.default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_of(config_field: Field) -> str:
    """`--name` of a field on the command line."""
    return "--" + (config_field.metadata.get("flag") or config_field.name).replace("_", "-")


def refuse(config: Any, name: str, requirement: str, fix: str) -> ValueError:
    """A ValueError naming the key, its flag, the bad value, the requirement and the fix."""
    config_field = next(f for f in fields(config) if f.name == name)
    return ValueError(f"{name} ({flag_of(config_field)}) must be {requirement}, got {getattr(config, name)!r}; {fix}")


@dataclass(kw_only=True)
class RunConfig:
    """Shared settings of a resumable run over a data file with a base and an RL model."""

    base: str = option("Base model: Hugging Face directory or hub id.", group="models")
    data: str = option("JSONL or parquet file with the prompts (verl's format works).", group="data", path=True)
    out: str = option("Output directory; rerun the same command to resume.", group="data", path=True)
    prompt_column: str = option("Column with the prompt (text, token ids or a chat list).", "prompt", group="data")
    chat_template: bool = option(
        "Apply the tokenizer's chat template to text prompts (chat-list prompts always use it).", True, group="data")
    temperature: float = option("Sampling temperature (the paper: 1.0).", 1.0, group="sampling")
    top_p: float = option("Sampling top-p (the paper: 0.7).", 1.0, group="sampling")
    max_new_tokens: int = option("Sampling: longest response, in tokens.", 512, group="sampling")
    seed: int = option("Sampling seed (per shard, so resumed runs match).", 0, group="sampling")
    batch_size: int = option("Sequences per forward pass (responses decoded together).", 8, group="run")
    shard_size: int = option("Input rows per output shard (the unit of resume and of Ray work).", 64, group="run")
    dtype: str = option("auto (bf16 on GPU, float32 on CPU), float32, bfloat16 or float16.", "auto", group="run")
    workers: int = option("0: in-process; N: shard the work over N Ray actors (one GPU each).", 0, group="run")

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "batch_size", "shard_size"):
            if getattr(self, name) < 1:
                raise refuse(self, name, ">= 1", "give a positive count")
        if not self.temperature > 0:
            raise refuse(self, "temperature", "> 0", "use 1.0 to sample the model as it is (the paper)")
        if not 0 < self.top_p <= 1:
            raise refuse(self, "top_p", "in (0, 1]", "use 1.0 for no nucleus truncation or 0.7 as in the paper")
        if self.dtype not in DTYPES:
            raise refuse(self, "dtype", f"one of {', '.join(DTYPES)}", "auto picks bf16 on GPU and float32 on CPU")
        if self.workers < 0:
            raise refuse(self, "workers", ">= 0", "0 runs in-process, N spreads shards over N Ray actors")

    def check_inputs(self) -> list[str]:
        """Check the models, the data file and --out before any heavy work; returns the data's columns.

        Cheap (a file header, no model loading): raises `UserError` naming the option and the value.
        A command's config extends it with its own models and columns.
        """
        from sparse_rlvr.core.inputs import check_model, check_out_dir, require_columns, table_columns

        check_model(self.base, "--base")
        check_out_dir(self.out, "--out")
        columns = table_columns(self.data, "--data")
        require_columns(columns, {self.prompt_column: "--prompt-column"}, self.data)
        return columns

    def settings(self, *volatile: str) -> dict[str, Any]:
        """Every field but `out` and the `volatile` ones: what a resume must match."""
        keep = asdict(self)
        for name in ("out", *volatile):
            keep.pop(name)
        return keep

    @property
    def out_dir(self) -> Path:
        return Path(self.out)
