"""verl plugin entry point: registers sparse_rlvr's components in verl's registries, loudly.

verl imports this module (entry-point group ``verl.plugins``) in every process on ``import verl``
and logs a failing plugin only at DEBUG, so this module logs at INFO what it registered and at
WARNING anything it could not register, with the reason.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable

logger = logging.getLogger("sparse_rlvr.plugin")

REGISTERED: dict[str, str] = {}
"""What this process registered: component name -> verl registry, for tests and diagnostics."""


REGISTRATIONS = (
    ("sparse_rlvr.training.verl_glue.reward_manager", "register_reward_manager"),
    ("sparse_rlvr.training.verl_glue.registered_algorithms", "register_algorithms"),
    ("sparse_rlvr.training.verl_glue.registered_backends", "register_training_components"),
)
"""(module, function): each function registers one group of components and returns {name: registry}."""


def _registration(module_name: str, function_name: str) -> Callable[[], dict[str, str]] | None:
    """The registering function, or None when its module is the one whose import triggered `import verl`.

    E.g. `import sparse_rlvr.training.verl_glue.registered_algorithms` imports verl, which imports this plugin while that
    module is half-initialised; its decorators register it when its own import finishes.
    """
    half_done = module_name in sys.modules and not hasattr(sys.modules[module_name], function_name)
    if half_done:
        logger.debug("sparse_rlvr: %s is still importing; it registers itself when done", module_name)
        return None
    return getattr(importlib.import_module(module_name), function_name)


def load() -> dict[str, str]:
    """Register every component once per process; safe to call again."""
    for module_name, function_name in REGISTRATIONS:
        try:  # an import or registration failure must be visible, not fatal to verl
            register = _registration(module_name, function_name)
            if register is not None:
                REGISTERED.update(register())
        except Exception as error:
            logger.warning("sparse_rlvr: could not register %s.%s: %r", module_name, function_name, error)
    if REGISTERED:
        logger.info("sparse_rlvr registered in verl: %s", REGISTERED)
    return dict(REGISTERED)


load()
