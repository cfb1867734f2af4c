"""Train every experience for a fixed number of iterations, not epochs.

Some published protocols count mini-batches per task rather than epochs
(e.g. the complex-synapse comparison of van de Ven: 500 iterations of batch
128 per task). :class:`IterationBudgetPlugin` gives any Avalanche strategy such
a budget; the registry adds it when a method's merged hparams contain
``train_iterations`` (see :func:`avalanche_sparse.strategies.build_strategy`).

How it works with Avalanche 0.6 (``BaseSGDTemplate``): the strategy runs
``train_epochs`` epochs over its data loader; ``strategy.stop_training()``
sets a flag that ends the current epoch before its next mini-batch and skips
the remaining epochs of the experience (the flag is cleared then). The plugin

* sets ``strategy.train_epochs`` to an upper bound, ``iterations`` (every
  epoch has at least one mini-batch), at the start of every experience, so the
  budget is never cut short by the epoch count, whatever data loader (e.g.
  Replay's) the strategy ends up using;
* counts optimizer iterations and calls ``stop_training()`` after the
  ``iterations``-th one;
* clears the flag at the start and end of every experience: when the budget
  ends exactly with the last epoch the stock loop never consumes the flag,
  and a stale flag would silently skip the whole next experience.

Data order is the strategy's own (a fresh shuffle every epoch); a budget
longer than one epoch simply goes on into the next epoch.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any

from avalanche.core import SupervisedPlugin

__all__ = ["IterationBudgetPlugin"]


class IterationBudgetPlugin(SupervisedPlugin):
    """Stop training each experience after exactly ``iterations`` mini-batches.

    :param iterations: optimizer steps per training experience (int >= 1).

    After each experience, ``iterations_done[-1]`` holds the number of
    iterations actually run (fewer only if the data ran out, e.g. an empty
    experience; a warning says so).
    """

    def __init__(self, *, iterations: int) -> None:
        super().__init__()
        if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral):
            raise TypeError(f"iterations must be an int >= 1, got {iterations!r}")
        if iterations < 1:
            raise ValueError(f"iterations must be an int >= 1, got {iterations}")
        self.iterations = int(iterations)
        self.iterations_done: list[int] = []
        self._count = 0

    def before_training_exp(self, strategy: Any, *args, **kwargs) -> None:
        self._count = 0
        strategy._stop_training = False
        strategy.train_epochs = self.iterations

    def after_training_iteration(self, strategy: Any, *args, **kwargs) -> None:
        self._count += 1
        if self._count >= self.iterations:
            strategy.stop_training()

    def after_training_exp(self, strategy: Any, *args, **kwargs) -> None:
        strategy._stop_training = False
        self.iterations_done.append(self._count)
        if self._count < self.iterations:
            warnings.warn(
                f"IterationBudgetPlugin: experience ended after {self._count} of "
                f"{self.iterations} iterations",
                RuntimeWarning,
                stacklevel=2,
            )
