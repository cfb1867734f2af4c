"""The method registry: name -> model + optimizer + plugins + strategy class.

The Table 1 runner (``reproduce/table1.py``) knows methods only through this
registry, so adding a method never edits the runner: write a factory for
each ingredient and call :func:`register`::

    register(Method(
        name="my_method",
        description="...",
        model=default_model,
        optimizer=default_optimizer,
        plugins=lambda ctx: [MyPlugin(strength=ctx.hparams["strength"])],
        hparams={"strength": 1.0},
    ))

Hyper-parameters are merged in this order (later wins): the benchmark
protocol of the preset (epochs, batch size, lr, hidden sizes...), the
method's ``hparams``, the method's ``hparams_by_benchmark[benchmark]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

__all__ = [
    "MethodContext",
    "Method",
    "REGISTRY",
    "register",
    "get_method",
    "available_methods",
    "resolve_hparams",
    "default_model",
    "default_optimizer",
    "torch_optimizer",
    "no_plugins",
    "build_strategy",
]


@dataclass
class MethodContext:
    """Everything a factory may look at.

    :param benchmark: :class:`avalanche_sparse.benchmarks.scenarios.BenchmarkInfo`.
    :param hparams: merged hyper-parameters (see module docstring).
    :param seed: seed of the cell.
    :param device: torch device of the run.
    """

    benchmark: Any
    hparams: dict
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class Method:
    """One row of Table 1.

    :param name: registry key (what ``--methods`` takes).
    :param description: one line for ``--list`` and the README.
    :param model: ``ctx -> nn.Module``.
    :param optimizer: ``(model, ctx) -> torch.optim.Optimizer``.
    :param plugins: ``ctx -> list`` of Avalanche plugins.
    :param strategy: an Avalanche strategy class (``Naive``, ``EWC``...),
        imported lazily from its dotted path when given as a string.
    :param strategy_kwargs: ``ctx -> dict`` of extra strategy arguments
        (``ewc_lambda``...).
    :param hparams: default hyper-parameters of the method.
    :param hparams_by_benchmark: per-benchmark overrides: a dict, or a
        callable ``protocol -> dict`` (overrides that depend on the preset's
        protocol).
    :param benchmarks: benchmarks the method applies to (None: all).
    """

    name: str
    description: str
    model: Callable[[MethodContext], nn.Module]
    optimizer: Callable[[nn.Module, MethodContext], torch.optim.Optimizer]
    plugins: Callable[[MethodContext], list] = field(default=lambda ctx: [])
    strategy: Any = "avalanche.training.Naive"
    strategy_kwargs: Callable[[MethodContext], dict] = field(default=lambda ctx: {})
    hparams: dict = field(default_factory=dict)
    hparams_by_benchmark: dict = field(default_factory=dict)
    benchmarks: Optional[tuple] = None

    def strategy_class(self):
        """The strategy class, importing it if given as a dotted path."""
        if isinstance(self.strategy, str):
            import importlib

            module, _, name = self.strategy.rpartition(".")
            return getattr(importlib.import_module(module), name)
        return self.strategy


REGISTRY: dict[str, Method] = {}


def register(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry (error on a duplicate name unless ``replace``)."""
    if not isinstance(method, Method):
        raise TypeError(f"method must be a Method, got {type(method).__name__}")
    if method.name in REGISTRY and not replace:
        raise ValueError(f"method {method.name!r} is already registered")
    REGISTRY[method.name] = method
    return method


def available_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(REGISTRY)


def get_method(name: str) -> Method:
    """The registered method ``name``; the error lists the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown method {name!r}; valid methods: {', '.join(available_methods())}"
        ) from None


def resolve_hparams(method: Method, benchmark: str, protocol: dict) -> dict:
    """Merge protocol < method defaults < method per-benchmark overrides."""
    merged = dict(protocol)
    merged.update(method.hparams)
    extra = method.hparams_by_benchmark.get(benchmark, {})
    if callable(extra):  # protocol -> dict, e.g. to shrink a network on subsampled (quick) runs
        extra = extra(dict(protocol))
    merged.update(extra)
    return merged


def default_model(ctx: MethodContext) -> nn.Module:
    """The dense baseline network for the benchmark in ``ctx``.

    Images with more than one channel get :class:`SmallCNN`, others an
    :class:`MLP` of ``hparams["hidden_sizes"]``; task-incremental benchmarks
    get the multi-head twin.
    """
    from avalanche_sparse.models import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN

    info, hp = ctx.benchmark, ctx.hparams
    shape = tuple(info.input_shape)
    dropout = float(hp.get("dropout", 0.0))
    if hp.get("model", "mlp" if shape[0] == 1 else "cnn") == "cnn":
        cls = MultiHeadSmallCNN if info.multi_head else SmallCNN
        return cls(shape[0], info.n_classes, channels=tuple(hp.get("channels", (32, 64))),
                   hidden_size=int(hp.get("hidden_size", 256)), dropout=dropout,
                   image_size=shape[-1])
    cls = MultiHeadMLP if info.multi_head else MLP
    n_in = 1
    for s in shape:
        n_in *= s
    return cls(n_in, info.n_classes, hidden_sizes=tuple(hp["hidden_sizes"]), dropout=dropout)


def torch_optimizer(name: str, params: Iterable, *, lr: float, momentum: float = 0.0, nesterov: bool = False,
                    weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` (``name="sgd"``) or ``torch.optim.Adam`` (``"adam"``).

    ``fused=True`` (the default here) selects torch's vectorised
    implementations instead of the per-tensor loop torch uses by default on
    CPU: for Adam the fused kernel (about 10x faster for the 38 M parameters
    of the Active Dendrites network on CPU, 30 % faster per training step of
    the Split MNIST MLP; torch 2.14.1); for SGD the ``foreach`` path, because
    torch's fused SGD assumes that every parameter has a momentum buffer or
    none has, which is false as soon as Avalanche adds a new head's
    parameters to an optimizer that already holds state (task-incremental
    multi-head models). Both follow the same update rule as the loop, equal
    to float rounding but not bit for bit, so cells run before this choice
    (their JSON has no ``optimizer`` record) are not bit-comparable with
    later ones.
    """
    if name == "sgd":
        return torch.optim.SGD(params, lr=float(lr), momentum=float(momentum), nesterov=bool(nesterov),
                               weight_decay=float(weight_decay), foreach=bool(fused) or None)
    if name == "adam":
        return torch.optim.Adam(params, lr=float(lr), weight_decay=float(weight_decay), fused=bool(fused) or None)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def default_optimizer(model: nn.Module, ctx: MethodContext) -> torch.optim.Optimizer:
    """``hparams["optimizer"]`` (``"sgd"`` or ``"adam"``) with ``lr``,
    ``momentum``, ``nesterov`` and ``weight_decay`` from the hparams; fused
    unless ``hparams["fused_optimizer"]`` is false (:func:`torch_optimizer`)."""
    hp = ctx.hparams
    return torch_optimizer(hp.get("optimizer", "adam"), model.parameters(), lr=float(hp["lr"]),
                           momentum=float(hp.get("momentum", 0.0)), nesterov=bool(hp.get("nesterov", False)),
                           weight_decay=float(hp.get("weight_decay", 0.0)),
                           fused=bool(hp.get("fused_optimizer", True)))


def no_plugins(ctx: MethodContext) -> list:
    """No extra plugins."""
    return []


def build_strategy(method: Method, ctx: MethodContext, *, evaluator=None,
                   extra_plugins: Optional[list] = None):
    """Instantiate the Avalanche strategy of ``method`` for ``ctx``.

    Uses ``train_epochs``, ``train_mb_size`` and ``eval_mb_size`` from the
    merged hparams, a cross-entropy criterion, the method's plugins plus
    ``extra_plugins``. When the hparams hold ``train_iterations`` (not None),
    every experience trains for exactly that many mini-batches instead of
    ``train_epochs`` epochs (:class:`~avalanche_sparse.strategies.iterations.IterationBudgetPlugin`,
    placed first among the plugins).
    """
    hp = ctx.hparams
    model = method.model(ctx)
    optimizer = method.optimizer(model, ctx)
    plugins = list(method.plugins(ctx)) + list(extra_plugins or [])
    if hp.get("train_iterations") is not None:
        from .iterations import IterationBudgetPlugin

        plugins.insert(0, IterationBudgetPlugin(iterations=hp["train_iterations"]))
    kwargs = dict(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=int(hp["train_mb_size"]),
        train_epochs=int(hp["train_epochs"]),
        eval_mb_size=int(hp.get("eval_mb_size", 1024)),
        device=ctx.device,
        plugins=plugins,
    )
    if evaluator is not None:
        kwargs["evaluator"] = evaluator
    kwargs.update(method.strategy_kwargs(ctx))
    return method.strategy_class()(**kwargs)
