"""Run Avalanche ``PluginMetric``s from an ordinary plugin.

Avalanche takes metrics through its single ``EvaluationPlugin``. Where that
evaluator is built elsewhere (the Table 1 grid builds its own), a method can
still add a metric with :class:`MetricsPlugin`: it forwards every strategy
callback to the metrics and hands their values to the strategy's evaluator
(``publish_metric_value``), whose loggers (TensorBoard...) then log them like
any other metric value.
"""
from __future__ import annotations

from avalanche.core import SupervisedPlugin

__all__ = ["MetricsPlugin"]

_CALLBACKS = (
    "before_training", "before_training_exp", "before_training_epoch", "before_training_iteration",
    "after_training_iteration", "after_training_epoch", "after_training_exp", "after_training",
    "before_eval", "before_eval_exp", "after_eval_exp", "after_eval",
)


class MetricsPlugin(SupervisedPlugin):
    """Forward callbacks to ``metrics`` and publish their values.

    :param metrics: Avalanche ``PluginMetric`` instances.
    """

    def __init__(self, *metrics) -> None:
        super().__init__()
        if not metrics:
            raise ValueError("MetricsPlugin needs at least one metric")
        for m in metrics:
            if not callable(getattr(m, "result", None)):
                raise TypeError(f"not an Avalanche metric: {m!r}")
        self.metrics = list(metrics)

    def _run(self, name: str, strategy) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        for m in self.metrics:
            fn = getattr(m, name, None)
            if fn is None:
                continue
            out = fn(strategy)
            if out is None or evaluator is None:
                continue
            for mval in (out if isinstance(out, (list, tuple)) else [out]):
                evaluator.publish_metric_value(mval)


def _make(name):
    def cb(self, strategy, *args, **kwargs):
        self._run(name, strategy)

    cb.__name__ = name
    return cb


for _name in _CALLBACKS:
    setattr(MetricsPlugin, _name, _make(_name))
