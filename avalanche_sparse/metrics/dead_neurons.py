r"""Dead-neuron fraction of Top-K layers, as an Avalanche ``PluginMetric``.

A neuron is *dead* over an experience when it was never active (output
:math:`> 0`) for any training sample of that experience. Bricken et al. 2023
("Sparse Distributed Memory is a Continual Learner", ICLR, arXiv:2303.11934)
track this fraction because Top-K activations leave many neurons dead, and
dead neurons are not available to store new tasks; the GABA switch and plain
SGD (no stale momentum) keep it low.

The metric hooks the Top-K layers of the model (by default every
:class:`~avalanche_sparse.layers.GABASwitchTopK` and
:class:`~avalanche_sparse.layers.KWinnersBase`), records which units fire
during the training epochs of the experience (only forward passes in training
mode, between ``before_training_epoch`` and ``after_training_epoch``, so e.g.
EWC's importance pass after the experience is not counted), and emits one value
per layer after the experience: ``DeadNeurons/train_phase/train_stream/Exp003``
(plus ``/<layer name>`` when the model has several Top-K layers).

Use it like any Avalanche metric, in an ``EvaluationPlugin``; or, where the
evaluator is fixed (the Table 1 grid), through
:class:`~avalanche_sparse.metrics.MetricsPlugin`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from torch import nn

__all__ = ["DeadNeuronFraction", "dead_neuron_metrics", "default_topk_layer_types"]


def default_topk_layer_types() -> tuple[type, ...]:
    """The layer types hooked by default: GABA-switch Top-K and k-WTA layers."""
    from avalanche_sparse.layers.kwinners import KWinnersBase
    from avalanche_sparse.layers.topk import GABASwitchTopK

    return (GABASwitchTopK, KWinnersBase)


class DeadNeuronFraction(PluginMetric[dict]):
    """Fraction of units of each Top-K layer never active during training on
    an experience.

    :param layer_types: module types to hook (default:
        :func:`default_topk_layer_types`).
    :param layer_names: hook these named sub-modules instead (names as in
        ``model.named_modules()``).
    """

    def __init__(self, *, layer_types: Optional[Sequence[type]] = None,
                 layer_names: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if layer_types is not None and layer_names is not None:
            raise ValueError("give layer_types or layer_names, not both")
        if layer_types is not None:
            layer_types = tuple(layer_types)
            if not layer_types or not all(isinstance(t, type) for t in layer_types):
                raise TypeError(f"layer_types must be a non-empty sequence of types, got {layer_types!r}")
        self.layer_types = layer_types
        self.layer_names = None if layer_names is None else [str(n) for n in layer_names]
        self._active: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._recording = False

    # -- bookkeeping -----------------------------------------------------------
    def _layers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        named = dict(model.named_modules())
        if self.layer_names is not None:
            missing = [n for n in self.layer_names if n not in named]
            if missing:
                raise ValueError(f"DeadNeuronFraction: no sub-module named {missing}; "
                                 f"available: {[n for n in named if n]}")
            return [(n, named[n]) for n in self.layer_names]
        types = self.layer_types or default_topk_layer_types()
        return [(n, m) for n, m in named.items() if isinstance(m, types)]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if not (self._recording and module.training):
                return
            with torch.no_grad():
                out = output.detach()
                fired = (out.reshape(-1, out.shape[-1]) > 0).any(0) if out.dim() <= 2 else \
                    (out > 0).transpose(0, 1).reshape(out.shape[1], -1).any(1)
                prev = self._active.get(name)
                self._active[name] = fired if prev is None else prev | fired

        return hook

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def reset(self) -> None:
        self._active = {}

    def result(self) -> dict:
        """``{layer name: dead fraction}`` for the experience recorded so far."""
        return {n: 1.0 - float(a.float().mean()) for n, a in self._active.items()}

    # -- callbacks -------------------------------------------------------------
    def before_training_exp(self, strategy):
        self._remove_hooks()
        self.reset()
        layers = self._layers(strategy.model)
        if not layers:
            raise ValueError("DeadNeuronFraction: the model has no Top-K layer to watch "
                             "(GABASwitchTopK or KWinners); pass layer_names=")
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in layers]

    def before_training_epoch(self, strategy):
        self._recording = True

    def after_training_epoch(self, strategy):
        self._recording = False

    def after_training_exp(self, strategy):
        self._remove_hooks()
        res = self.result()
        exp = strategy.experience.current_experience
        base = f"{self}/train_phase/train_stream/Exp{exp:03d}"
        x = strategy.clock.train_iterations
        if len(res) == 1:
            return [MetricValue(self, base, next(iter(res.values())), x)]
        return [MetricValue(self, f"{base}/{n}", v, x) for n, v in res.items()]

    def __str__(self) -> str:
        return "DeadNeurons"


def dead_neuron_metrics(**kwargs) -> list[DeadNeuronFraction]:
    """``[DeadNeuronFraction(**kwargs)]``, in the style of Avalanche's
    ``*_metrics`` helpers (for ``EvaluationPlugin``)."""
    return [DeadNeuronFraction(**kwargs)]
