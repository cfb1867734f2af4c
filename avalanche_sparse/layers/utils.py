"""Model-wide helpers for sparse layers.

``rezero_weights(model)`` and ``update_boost_strength(model)`` call the method
of the same name on every sub-module that has one (the model itself
included), each exactly once. A container may define its own
``rezero_weights()`` / ``update_boost_strength()`` that just calls these helpers
on ``self``: the re-entrant call is detected and ignored, so there is neither
infinite recursion nor a double update (which would matter for the boost
strength, a multiplication). Each module's own method must handle only its own
state, not its children's.
"""
from __future__ import annotations

import threading
from typing import Iterator

from torch import nn

__all__ = ["rezero_weights", "update_boost_strength"]

_active = threading.local()


def _call_each(module: nn.Module, method: str) -> int:
    busy: set[tuple[int, str]] = getattr(_active, "busy", None) or set()
    _active.busy = busy
    key = (id(module), method)
    if key in busy:
        return 0
    busy.add(key)
    try:
        count = 0
        for m in _with_method(module, method):
            getattr(m, method)()
            count += 1
        return count
    finally:
        busy.discard(key)


def _with_method(module: nn.Module, method: str) -> Iterator[nn.Module]:
    for m in module.modules():
        if callable(getattr(m, method, None)):
            yield m


def rezero_weights(module: nn.Module) -> int:
    """Re-apply the fixed zero masks of all sparse layers in ``module``.

    Must run after every optimizer step (optimizers do not know the masks).
    Returns the number of modules visited.
    """
    return _call_each(module, "rezero_weights")


def update_boost_strength(module: nn.Module) -> int:
    """Multiply the boost strength of every k-WTA layer in ``module`` by its
    ``boost_strength_factor`` (call once per epoch). Returns the number of
    modules updated."""
    return _call_each(module, "update_boost_strength")
