"""Derive a Typer command from a config dataclass: one option per field, with its name, type, default and help.

The config (see `core.run_config.option`) is the single source; nothing is restated here. Types
map as: str/int/float/bool as they are (bool gives --x/--no-x), `int | None` an optional int,
`Literal[...]` a string checked by the config, `list[str]` a repeated option, `list[float]` one
comma-separated option ("0.05,0.1"), and `path=True` fields a PATH stored as str.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sparse_rlvr.core.errors import UserError
from sparse_rlvr.core.run_config import GROUPS, flag_of


@dataclass(frozen=True)
class CliOption:
    """How one config field appears on the command line."""

    field: str
    parameter: str
    annotation: Any
    default: Any
    help: str
    convert: Callable[[Any], Any]

    def parse(self, value: Any) -> Any:
        """The config's value for what the command line gave; a bad value names the option."""
        try:
            return self.convert(value)
        except ValueError as error:
            raise ValueError(f"--{self.parameter.replace('_', '-')}: {error}") from None


def cli_options(config_class: type) -> list[CliOption]:
    """The command-line options of `config_class`, in --help order (by group, then as declared)."""
    hints = typing.get_type_hints(config_class)
    ordered = sorted(fields(config_class), key=lambda f: GROUPS.index(f.metadata.get("group", "method")))
    return [_cli_option(f, hints[f.name]) for f in ordered]


def config_command(config_class: type, run: Callable[[Any], None], doc: str) -> Callable[..., None]:
    """A Typer command taking `config_class`'s fields as options; it builds the config and calls `run(config)`.

    A value the config refuses raises `UserError` (the entry point prints `error: <what to set>`
    and exits with code 2, a usage error); the config's own `check_inputs()`, when it has one,
    then checks files, models and columns before `run` starts any heavy work.
    """
    options = cli_options(config_class)

    def command(**values: Any) -> None:
        try:
            config = config_class(**{o.field: o.parse(values[o.parameter]) for o in options})
        except ValueError as error:
            raise UserError(str(error)) from error
        if hasattr(config, "check_inputs"):
            config.check_inputs()
        run(config)

    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(o.parameter, inspect.Parameter.KEYWORD_ONLY, default=o.default,
                          annotation=Annotated[o.annotation, typer.Option(help=o.help)])
        for o in options
    ])
    command.__doc__ = doc
    return command


def _cli_option(config_field: Field, hint: Any) -> CliOption:
    if not config_field.metadata.get("help"):
        raise TypeError(f"config field {config_field.name!r} has no help text; declare it with core.run_config.option")
    default = _default(config_field)
    annotation, convert = _cli_type(config_field, hint)
    if annotation is str and convert is _floats and default is not inspect.Parameter.empty:
        default = ",".join(f"{v:g}" for v in default)
    return CliOption(config_field.name, flag_of(config_field)[2:].replace("-", "_"), annotation, default,
                     config_field.metadata["help"], convert)


def _default(config_field: Field) -> Any:
    if config_field.default is not MISSING:
        return config_field.default
    if config_field.default_factory is not MISSING:
        return config_field.default_factory()
    return inspect.Parameter.empty  # required


def _cli_type(config_field: Field, hint: Any) -> tuple[Any, Callable[[Any], Any]]:
    """(type Typer shows and parses, conversion of the parsed value into the config's value)."""
    if config_field.metadata.get("path"):
        return Path, str
    if typing.get_origin(hint) is typing.Literal:
        return str, _same
    if hint == list[float]:
        return str, _floats
    if hint == list[str]:
        return list[str], list
    if hint in (int | None, Optional[int]):
        return Optional[int], _same
    if hint in (str, int, float, bool):
        return hint, _same
    raise TypeError(f"config field {config_field.name!r}: no command-line form for {hint}")


def _same(value: Any) -> Any:
    return value


def _floats(text: str) -> list[float]:
    """'0.05, 0.1' -> [0.05, 0.1]."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers such as 0.05,0.1, got {text!r}") from None
