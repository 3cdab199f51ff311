"""verl plugin entry point: registers sparse_rlvr's components in verl's registries, loudly.

verl imports this module (entry-point group ``verl.plugins``) in every process on ``import verl``
and logs a failing plugin only at DEBUG, so this module logs at INFO what it registered and at
WARNING anything it could not register, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("sparse_rlvr.plugin")

REGISTERED: dict[str, str] = {}
"""What this process registered: component name -> verl registry, for tests and diagnostics."""


def _registrations() -> list[Callable[[], dict[str, str]]]:
    """Each entry registers one group of components and returns {name: registry}."""
    from sparse_rlvr.rewards.verl_reward_manager import register_reward_manager
    from sparse_rlvr.training.algorithms import register_algorithms
    from sparse_rlvr.training.registration import register_training_components

    return [register_reward_manager, register_algorithms, register_training_components]


def load() -> dict[str, str]:
    """Register every component once per process; safe to call again."""
    try:
        registrations = _registrations()
    except Exception as error:  # an import failure must be visible, not fatal to verl
        logger.warning("sparse_rlvr: could not import its verl components: %r", error)
        return {}
    for register in registrations:
        try:
            REGISTERED.update(register())
        except Exception as error:
            logger.warning("sparse_rlvr: could not register %s: %r", register.__name__, error)
    if REGISTERED:
        logger.info("sparse_rlvr registered in verl: %s", REGISTERED)
    return dict(REGISTERED)


load()
