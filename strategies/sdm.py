r"""Sparse Distributed Memory in Avalanche: the plugin that keeps the SDMLP's
constraints and schedules, and the Table 1 rows.

Bricken, Davies, Singh, Krotov & Kreiman 2023, "Sparse Distributed Memory is a
Continual Learner", ICLR, arXiv:2303.11934; reference code
TrentBrick/SDMContinualLearner.

:class:`SDMPlugin` works inside any Avalanche strategy (``Naive``, ``EWC``,
``SynapticIntelligence``, ``Replay``...). It acts on every sub-module of the
strategy's model that has the SDM hooks (so a model may wrap an SDMLP):

* ``before_training``: warns (:class:`~avalanche_sparse.models.StaleMomentumWarning`,
  not an error) when the optimizer keeps momentum-like state (SGD momentum,
  Adam/AdamW betas, RMSprop, Adagrad): with Top-K activations that state goes
  *stale* (the paper's section 4), so plain SGD is the default for SDMLP;
* ``before_training_exp`` (first experience only, when ``gaba_switch_fraction``
  is given): sets the GABA switch length
  :math:`T = \lceil f \cdot E \cdot N_1 \rceil` from the first experience's
  :math:`N_1` samples and the strategy's :math:`E` epochs, i.e. a neuron that
  fires for every sample completes its switch after a fraction :math:`f` of the
  first experience (the paper's Split MNIST setting, :math:`T` = 5,000,000 over
  500 epochs of 12,665 images, is :math:`f \approx 0.79`);
* ``before_training_iteration``: advances the linear k annealing schedules
  (``update_k(epochs)``, fractional epochs counted over all experiences; the
  reference steps once per epoch);
* ``before_update``: optional gradient-norm clipping (the reference clips at 1.0
  in every run);
* ``after_update``: re-imposes the constraints (``enforce_constraints()``:
  clamp weights at 0, L2-normalise the neuron addresses) after every optimizer
  step.

The GABA-switch counters themselves advance in the model's forward pass
(training mode), so they follow the training step with no plugin help.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Optional

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from .registry import Method, MethodContext, default_optimizer, register

__all__ = ["SDMPlugin", "SDMLP_METHOD", "TOPK_METHOD", "SDMLP_EWC_METHOD", "SDMLP_SGDM_METHOD",
           "SDMLP_ADAM_METHOD", "sdm_model", "topk_model", "sdm_plugins"]


class SDMPlugin(SupervisedPlugin):
    """Keep SDMLP constraints and schedules inside any Avalanche strategy.

    :param grad_clip_norm: clip the global gradient norm to this value before
        every optimizer step (``None``: no clipping).
    :param gaba_switch_fraction: if given, set the GABA switch length of every
        GABA-switch Top-K layer from the first experience (see module docstring).
    :param warn_momentum: warn when the optimizer keeps momentum.
    """

    def __init__(self, *, grad_clip_norm: Optional[float] = None,
                 gaba_switch_fraction: Optional[float] = None, warn_momentum: bool = True) -> None:
        super().__init__()
        if grad_clip_norm is not None:
            if isinstance(grad_clip_norm, bool) or not isinstance(grad_clip_norm, Real):
                raise TypeError(f"grad_clip_norm must be a number or None, got {type(grad_clip_norm).__name__}")
            if not float(grad_clip_norm) > 0:
                raise ValueError(f"grad_clip_norm must be > 0, got {grad_clip_norm}")
        if gaba_switch_fraction is not None:
            if isinstance(gaba_switch_fraction, bool) or not isinstance(gaba_switch_fraction, Real):
                raise TypeError("gaba_switch_fraction must be a number or None, "
                                f"got {type(gaba_switch_fraction).__name__}")
            if not float(gaba_switch_fraction) > 0:
                raise ValueError(f"gaba_switch_fraction must be > 0, got {gaba_switch_fraction}")
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.gaba_switch_fraction = None if gaba_switch_fraction is None else float(gaba_switch_fraction)
        self.warn_momentum = bool(warn_momentum)
        self.epochs_done = 0
        self._gaba_set = False

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def constrained_modules(model: nn.Module) -> list[nn.Module]:
        """Sub-modules with ``enforce_constraints()`` (SDMLP)."""
        return [m for m in model.modules() if callable(getattr(m, "enforce_constraints", None))]

    @staticmethod
    def scheduled_modules(model: nn.Module) -> list[nn.Module]:
        """Sub-modules with a k annealing schedule (``update_k`` and ``anneals_k``)."""
        return [m for m in model.modules()
                if callable(getattr(m, "update_k", None)) and getattr(m, "anneals_k", False)]

    @staticmethod
    def gaba_layers(model: nn.Module) -> list[nn.Module]:
        from avalanche_sparse.layers.topk import GABASwitchTopK

        return [m for m in model.modules() if isinstance(m, GABASwitchTopK)]

    # -- callbacks -----------------------------------------------------------
    def before_training(self, strategy, *args, **kwargs):
        model = strategy.model
        if not (self.constrained_modules(model) or self.scheduled_modules(model)
                or self.gaba_layers(model)):
            raise ValueError("SDMPlugin: the model has no SDM module (nothing with enforce_constraints(), "
                             "a k schedule or a GABASwitchTopK layer); use it with SDMLP or TopKMLP")
        if self.warn_momentum:
            from avalanche_sparse.models.sdm import warn_stale_momentum

            warn_stale_momentum(strategy.optimizer, where=f"SDMPlugin ({type(model).__name__})")
        for m in self.constrained_modules(model):
            m.enforce_constraints()

    def before_training_exp(self, strategy, *args, **kwargs):
        if self.gaba_switch_fraction is None or self._gaba_set:
            return
        n = len(strategy.experience.dataset)
        t = max(1, math.ceil(self.gaba_switch_fraction * int(strategy.train_epochs) * n))
        for layer in self.gaba_layers(strategy.model):
            layer.set_gaba_switch_activations(t)
        self._gaba_set = True

    def before_training_iteration(self, strategy, *args, **kwargs):
        modules = self.scheduled_modules(strategy.model)
        if not modules:
            return
        try:
            n_batches = max(1, len(strategy.dataloader))
        except TypeError:  # a loader without a length
            n_batches = 0
        frac = strategy.clock.train_epoch_iterations / n_batches if n_batches else 0.0
        for m in modules:
            m.update_k(self.epochs_done + frac)

    def after_training_epoch(self, strategy, *args, **kwargs):
        self.epochs_done += 1

    def before_update(self, strategy, *args, **kwargs):
        if self.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), self.grad_clip_norm)

    def after_update(self, strategy, *args, **kwargs):
        for m in self.constrained_modules(strategy.model):
            m.enforce_constraints()


# ---------------------------------------------------------------------------
# Table 1 rows
# ---------------------------------------------------------------------------
def _n_inputs(ctx: MethodContext) -> int:
    n = 1
    for s in ctx.benchmark.input_shape:
        n *= int(s)
    return n


def _normalisation(ctx: MethodContext) -> dict:
    """Undo the benchmark's ``Normalize`` so SDMLP sees [0, 1] pixels, as in the
    reference (whose MNIST and CIFAR pixels are ``x / 255``)."""
    from avalanche_sparse.benchmarks.scenarios import CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD

    name = str(getattr(ctx.benchmark, "name", ""))
    if "cifar10" in name:
        return {"input_mean": CIFAR10_MEAN, "input_std": CIFAR10_STD, "input_channels": 3}
    if "mnist" in name and "fashion" not in name and "fmnist" not in name:
        return {"input_mean": MNIST_MEAN, "input_std": MNIST_STD, "input_channels": 1}
    return {}


def sdm_model(ctx: MethodContext) -> nn.Module:
    """SDMLP for ``ctx`` (hparams ``n_neurons``, ``k``, ``gaba_switch_activations``
    when given absolutely, else the plugin derives it)."""
    from avalanche_sparse.models import SDMLP

    hp = ctx.hparams
    if ctx.benchmark.multi_head:
        raise ValueError("SDMLP rows are single-head (class-incremental) models; "
                         f"benchmark {ctx.benchmark.name!r} is multi-head")
    t = hp.get("gaba_switch_activations")
    return SDMLP(_n_inputs(ctx), ctx.benchmark.n_classes, n_neurons=int(hp["n_neurons"]), k=int(hp["k"]),
                 gaba_switch_activations=None if t is None else int(t),
                 positive_weights=bool(hp.get("positive_weights", True)), **_normalisation(ctx))


def topk_model(ctx: MethodContext) -> nn.Module:
    """TopKMLP for ``ctx``: k anneals from all neurons to ``k`` over
    ``k_transition_epochs`` (absolute, when given) or ``k_transition_fraction``
    of one experience's epochs."""
    from avalanche_sparse.models import TopKMLP

    hp = ctx.hparams
    trans = hp.get("k_transition_epochs")
    if trans is None:
        trans = float(hp["k_transition_fraction"]) * float(hp["train_epochs"])
    return TopKMLP(_n_inputs(ctx), ctx.benchmark.n_classes, n_neurons=int(hp["n_neurons"]), k=int(hp["k"]),
                   k_transition_epochs=float(trans))


def sdm_plugins(ctx: MethodContext) -> list:
    """An :class:`SDMPlugin` with ``grad_clip_norm`` and (unless an absolute
    ``gaba_switch_activations`` is given) ``gaba_switch_fraction``, and the
    dead-neuron metric (logged per experience to the run's TensorBoard)."""
    hp = ctx.hparams
    from avalanche_sparse.metrics import DeadNeuronFraction, MetricsPlugin

    frac = None if hp.get("gaba_switch_activations") is not None else hp.get("gaba_switch_fraction")
    return [SDMPlugin(grad_clip_norm=hp.get("grad_clip_norm"), gaba_switch_fraction=frac),
            MetricsPlugin(DeadNeuronFraction())]


def _dead_neurons():
    from avalanche_sparse.metrics import DeadNeuronFraction, MetricsPlugin

    return MetricsPlugin(DeadNeuronFraction())


_BENCHMARKS = ("split_mnist_class", "split_cifar10_class")
# reference: sdm_settings + cont_learn_on_SplitMNIST.py (plain SGD lr 0.05, batch 128,
# gradient clip 1.0, 1K neurons, k = 10); T of the GABA switch relative to the
# first experience unless a preset gives it absolutely (see SDMPlugin)
_SDM_HP = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "train_mb_size": 128, "n_neurons": 1000,
           "k": 10, "grad_clip_norm": 1.0, "gaba_switch_fraction": 0.8}

SDMLP_METHOD = register(Method(
    name="sdmlp",
    description="SDMLP (Bricken et al. 2023): Top-K + GABA switch, L2 norms, no bias, positive weights; plain SGD",
    model=sdm_model, optimizer=default_optimizer, plugins=sdm_plugins,
    strategy="avalanche.training.Naive", hparams=dict(_SDM_HP), benchmarks=_BENCHMARKS,
))

TOPK_METHOD = register(Method(
    name="topk",
    description="Top-K MLP without SDM constraints (paper's Top-K baseline), k annealed 1000->10; plain SGD",
    model=topk_model, optimizer=default_optimizer, plugins=lambda ctx: [
        SDMPlugin(grad_clip_norm=ctx.hparams.get("grad_clip_norm")), _dead_neurons()],
    strategy="avalanche.training.Naive",
    # reference ffn_top_k: LINEAR_DECAY_MASK, k_transition_epochs 200 of 500 per task
    hparams={"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "train_mb_size": 128, "n_neurons": 1000,
             "k": 10, "grad_clip_norm": 1.0, "k_transition_fraction": 0.4},
    benchmarks=_BENCHMARKS,
))

SDMLP_EWC_METHOD = register(Method(
    name="sdmlp_ewc",
    description="SDMLP with Avalanche's stock EWC strategy (separate penalties)",
    model=sdm_model, optimizer=default_optimizer, plugins=sdm_plugins,
    strategy="avalanche.training.EWC",
    strategy_kwargs=lambda ctx: {"ewc_lambda": float(ctx.hparams["ewc_lambda"]), "mode": "separate"},
    hparams={**_SDM_HP, "ewc_lambda": 1000.0},
    benchmarks=_BENCHMARKS,
))

SDMLP_SGDM_METHOD = register(Method(
    name="sdmlp_sgdm",
    description="stale-momentum ablation: the same SDMLP trained with SGD + momentum 0.9 (lr 0.03)",
    model=sdm_model, optimizer=default_optimizer, plugins=sdm_plugins,
    strategy="avalanche.training.Naive",
    # reference ablate_test_sdm_optimizers.py: SGDM lr 0.03, momentum 0.9
    hparams={**_SDM_HP, "lr": 0.03, "momentum": 0.9},
    benchmarks=_BENCHMARKS,
))

SDMLP_ADAM_METHOD = register(Method(
    name="sdmlp_adam",
    description="stale-momentum ablation: the same SDMLP trained with Adam (lr 1e-3)",
    model=sdm_model, optimizer=default_optimizer, plugins=sdm_plugins,
    strategy="avalanche.training.Naive",
    # reference ablate_test_sdm_optimizers.py: Adam lr 0.001
    hparams={**_SDM_HP, "optimizer": "adam", "lr": 1e-3},
    benchmarks=_BENCHMARKS,
))
