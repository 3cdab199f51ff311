"""Turn Hydra's composition errors (a misspelt key, an unknown recipe, a malformed override) into one UserError line.

Hydra says "Could not override 'sparse_rlvr.weighting.scael'" and stops there. Here the recipe
is composed without the user's overrides and the nearest existing key is named (difflib, level
by level from the deepest part of the path that exists), e.g.
``error: unknown config key sparse_rlvr.weighting.scael; did you mean sparse_rlvr.weighting.scale?``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparse_rlvr.core.errors import UserError, closest

_BAD_OVERRIDE = re.compile(r"Could not override '([^']+)'")
_BAD_APPEND = re.compile(r"Could not append to config\. An item is already at '([^']+)'")


def explain(error: Exception, config_name: str, overrides: list[str], config_dir: Path,
            compose: Callable[[str, list[str]], Any]) -> UserError:
    """A UserError for Hydra's `error` while composing `config_name` with `overrides`."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(error).strip()
    if isinstance(error, MissingConfigException) and config_name not in _recipes(config_dir):
        recipes = _recipes(config_dir)
        hint = closest(config_name, recipes)
        return UserError(f"unknown recipe --config-name {config_name}" + (f"; did you mean {hint}?" if hint else "")
                         + f" (recipes: {', '.join(recipes)})")
    if isinstance(error, OverrideParseException):
        return UserError(f"malformed override: {text.splitlines()[0]}; write overrides as key=value, e.g. "
                         "trainer.total_training_steps=5")
    match = _BAD_OVERRIDE.search(text)
    if match:
        key = match.group(1)
        try:
            suggestion = nearest_key(key, compose(config_name, []))
        except Exception:  # the recipe alone does not compose: say what Hydra said
            suggestion = None
        fix = f"did you mean {suggestion}?" if suggestion else f"to add a new key write +{key}=..."
        return UserError(f"unknown config key {key} in recipe {config_name}; {fix}")
    first = text.splitlines()[0] if text else type(error).__name__
    return UserError(f"recipe {config_name} with overrides {overrides}: {first}; check the overrides (key=value)")


def nearest_key(key: str, config: Any) -> str | None:
    """The existing dotted key of `config` (an OmegaConf DictConfig or dict) most like `key`."""
    parts = key.split(".")
    node, path = config, []
    for index, part in enumerate(parts):
        children = _children(node)
        if children is None:
            break
        if part in children:
            node, path = children[part], path + [part]
            continue
        match = closest(part, children)
        if match is None:
            break
        rest = parts[index + 1 :]
        return ".".join([*path, match, *rest]) if _exists(children[match], rest) else ".".join([*path, match])
    flat = list(_flat_keys(config))
    return closest(key, flat)


def _children(node: Any) -> dict[str, Any] | None:
    from omegaconf import DictConfig

    if isinstance(node, DictConfig):
        return {str(k): node._get_node(k) for k in node.keys()}
    if isinstance(node, dict):
        return {str(k): v for k, v in node.items()}
    return None


def _exists(node: Any, parts: list[str]) -> bool:
    for part in parts:
        children = _children(node)
        if children is None or part not in children:
            return False
        node = children[part]
    return True


def _flat_keys(node: Any, prefix: str = "") -> Any:
    children = _children(node) or {}
    for name, child in children.items():
        key = f"{prefix}{name}"
        yield key
        yield from _flat_keys(child, key + ".")


def _recipes(config_dir: Path) -> list[str]:
    return sorted(p.stem for p in config_dir.glob("*.yaml") if not p.stem.startswith("_"))
