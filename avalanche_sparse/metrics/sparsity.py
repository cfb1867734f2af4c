r"""Sparsity statistics as Avalanche ``PluginMetric``\ s (the seed's ``record_stats``).

Four metrics, each emitted once per training experience (at
``after_training_exp``), one value per layer, so that any Avalanche logger
(``TensorboardLogger`` included) records them:

* :class:`ActivationDensity` -- fraction of non-zero outputs of each
  activation layer (k-WTA and ReLU) over all training samples of the
  experience: :math:`\rho = \#\{y \ne 0\} / \#y`. For a k-WTA layer it is about
  ``k / n`` (``percent_on``); for the ReLU of a dense twin it is the
  "natural" sparsity the seed compared against.
* :class:`DutyCycleHistogram` -- the duty cycles of each k-WTA layer's units
  (a tensor; ``TensorboardLogger`` writes it as a histogram). Boosting aims
  to flatten this distribution around the target density (Ahmad &
  Scheinkman 2019, arXiv:1903.11257).
* :class:`DeadUnits` -- fraction of units of each activation layer that were
  never active (never won, output always 0) on any training sample of the
  experience. For convolutional layers a unit is a channel (active if it is
  non-zero at any location).
* :class:`WeightDensity` -- realised fraction of non-zero weights of each
  sparse layer (``SparseWeights``/``SparseWeights2d``); it stays at the mask's
  density only if the weights are re-zeroed after every optimizer step (see
  :class:`avalanche_sparse.strategies.SparseNetworkPlugin`).

Metric names follow Avalanche's pattern,
``<Metric>/train_phase/<layer>/Exp<NNN>``, with ``<layer>`` the module's
qualified name in the model (``features.2``). The x value is the strategy's
``train_iterations`` counter. Activation statistics are collected by forward
hooks registered at ``before_training_exp`` and removed at
``after_training_exp``; only calls in training mode count.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from torch import Tensor, nn

from avalanche_sparse.layers import KWinnersBase, SparseWeightsBase

__all__ = [
    "ActivationDensity",
    "DutyCycleHistogram",
    "DeadUnits",
    "WeightDensity",
    "sparsity_metrics",
]

#: default activation layers watched by the activation metrics
ACTIVATION_TYPES: tuple[type, ...] = (KWinnersBase, nn.ReLU)


def _check_types(layer_types: Sequence[type]) -> tuple[type, ...]:
    types = tuple(layer_types)
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise TypeError(f"layer_types must be a non-empty sequence of nn.Module subclasses, got {layer_types!r}")
    return types


def _name(metric: str, layer: str, exp: int) -> str:
    return f"{metric}/train_phase/{layer or 'model'}/Exp{exp:03d}"


class _HookedActivationMetric(PluginMetric[dict]):
    """Registers forward hooks on the activation layers for one training
    experience and emits one value per layer at its end."""

    metric_name = ""

    def __init__(self, layer_types: Sequence[type] = ACTIVATION_TYPES) -> None:
        super().__init__()
        self.layer_types = _check_types(layer_types)
        self._handles: list = []
        self._stats: dict[str, list] = {}

    # state ---------------------------------------------------------------
    def reset(self) -> None:
        self._stats = {}

    def _observe(self, name: str, y: Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _value(self, name: str) -> Optional[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def result(self) -> dict:
        """``{layer name: value}`` for the layers seen so far."""
        out = {}
        for name in self._stats:
            v = self._value(name)
            if v is not None:
                out[name] = v
        return out

    # hooks ---------------------------------------------------------------
    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def before_training_exp(self, strategy) -> None:
        self._remove_hooks()
        self.reset()
        for name, module in strategy.model.named_modules():
            if isinstance(module, self.layer_types):
                self._handles.append(module.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            if module.training and isinstance(output, Tensor):
                with torch.no_grad():
                    self._observe(name, output.detach())

        return hook

    def after_training_exp(self, strategy) -> list[MetricValue]:
        self._remove_hooks()
        exp = strategy.experience.current_experience
        x = strategy.clock.train_iterations
        return [MetricValue(self, _name(self.metric_name, layer, exp), value, x)
                for layer, value in self.result().items()]

    def __str__(self) -> str:
        return self.metric_name


class ActivationDensity(_HookedActivationMetric):
    r"""Fraction of non-zero outputs of each activation layer over the
    training samples of an experience, :math:`\#\{y \ne 0\} / \#y`.

    :param layer_types: module types to watch (default: k-WTA layers and ReLU).
    """

    metric_name = "ActivationDensity"

    def _observe(self, name: str, y: Tensor) -> None:
        s = self._stats.setdefault(name, [0, 0])
        s[0] += int(torch.count_nonzero(y))
        s[1] += y.numel()

    def _value(self, name: str) -> Optional[float]:
        nonzero, total = self._stats[name]
        return nonzero / total if total else None


class DeadUnits(_HookedActivationMetric):
    """Fraction of the units of each activation layer never active (non-zero)
    on any training sample of an experience. A unit is a feature of the last
    dimension for ``(batch, n)`` outputs and a channel for ``(batch, C, H, W)``.

    :param layer_types: module types to watch (default: k-WTA layers and ReLU).
    """

    metric_name = "DeadUnits"

    def _observe(self, name: str, y: Tensor) -> None:
        if y.dim() == 4:
            active = (y != 0).any(dim=3).any(dim=2).any(dim=0)
        else:
            active = (y.reshape(-1, y.shape[-1]) != 0).any(dim=0)
        s = self._stats.get(name)
        if s is None or s[0].shape != active.shape:
            self._stats[name] = [active]
        else:
            s[0] |= active

    def _value(self, name: str) -> Optional[float]:
        ever = self._stats[name][0]
        return 1.0 - float(ever.float().mean()) if ever.numel() else None


class DutyCycleHistogram(PluginMetric[dict]):
    """The duty cycles of every k-WTA layer at the end of each training
    experience, as a 1-D tensor per layer (``TensorboardLogger`` logs it as a
    histogram)."""

    metric_name = "DutyCycle"

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, Tensor] = {}

    def reset(self) -> None:
        self._last = {}

    def result(self) -> dict:
        """``{layer name: duty cycles}`` of the last experience."""
        return dict(self._last)

    def after_training_exp(self, strategy) -> list[MetricValue]:
        self._last = {name: m.duty_cycle.detach().flatten().cpu().clone()
                      for name, m in strategy.model.named_modules() if isinstance(m, KWinnersBase)}
        exp = strategy.experience.current_experience
        x = strategy.clock.train_iterations
        return [MetricValue(self, _name(self.metric_name, layer, exp), value, x)
                for layer, value in self._last.items()]

    def __str__(self) -> str:
        return self.metric_name


class WeightDensity(PluginMetric[dict]):
    """Realised fraction of non-zero weights of every sparse layer
    (``SparseWeights``/``SparseWeights2d``) at the end of each training
    experience.

    :param include_dense: also report plain ``nn.Linear``/``nn.Conv2d`` layers
        that are not wrapped by a sparse layer (the dense twin, classifiers).
    """

    metric_name = "WeightDensity"

    def __init__(self, *, include_dense: bool = False) -> None:
        super().__init__()
        self.include_dense = bool(include_dense)
        self._last: dict[str, float] = {}

    def reset(self) -> None:
        self._last = {}

    def result(self) -> dict:
        """``{layer name: density}`` of the last experience."""
        return dict(self._last)

    def _layers(self, model: nn.Module):
        wrapped = set()
        for name, m in model.named_modules():
            if isinstance(m, SparseWeightsBase):
                wrapped.add(id(m.module))
                yield name, m.module.weight
        if self.include_dense:
            for name, m in model.named_modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)) and id(m) not in wrapped:
                    yield name, m.weight

    def after_training_exp(self, strategy) -> list[MetricValue]:
        with torch.no_grad():
            self._last = {name: float(torch.count_nonzero(w)) / w.numel()
                          for name, w in self._layers(strategy.model)}
        exp = strategy.experience.current_experience
        x = strategy.clock.train_iterations
        return [MetricValue(self, _name(self.metric_name, layer, exp), value, x)
                for layer, value in self._last.items()]

    def __str__(self) -> str:
        return self.metric_name


def sparsity_metrics(
    *,
    activation_density: bool = True,
    duty_cycle: bool = True,
    dead_units: bool = True,
    weight_density: bool = True,
    layer_types: Sequence[type] = ACTIVATION_TYPES,
) -> list[PluginMetric]:
    """The sparsity metrics to pass to an Avalanche ``EvaluationPlugin``::

        EvaluationPlugin(accuracy_metrics(stream=True), *sparsity_metrics(),
                         loggers=[TensorboardLogger()])
    """
    out: list[PluginMetric] = []
    if activation_density:
        out.append(ActivationDensity(layer_types))
    if duty_cycle:
        out.append(DutyCycleHistogram())
    if dead_units:
        out.append(DeadUnits(layer_types))
    if weight_density:
        out.append(WeightDensity())
    return out
