"""Avalanche plugins of avalanche-sparse and the method registry.

Installed as :mod:`avalanche_sparse.strategies` (``setup.py`` maps the
top-level ``strategies/`` folder here). Importing this package registers the
built-in methods.
"""
from . import baselines  # noqa: F401  (registers naive, ewc, si, joint)
from . import complex_synapses  # noqa: F401  (registers complex_synapse, _plain, _sgd)
from .iterations import IterationBudgetPlugin
from .progress import EpochProgressPlugin
from .registry import (
    REGISTRY,
    Method,
    MethodContext,
    available_methods,
    build_strategy,
    default_model,
    default_optimizer,
    get_method,
    register,
    resolve_hparams,
)

__all__ = [
    "REGISTRY",
    "Method",
    "MethodContext",
    "available_methods",
    "build_strategy",
    "default_model",
    "default_optimizer",
    "get_method",
    "register",
    "resolve_hparams",
    "EpochProgressPlugin",
    "IterationBudgetPlugin",
]
