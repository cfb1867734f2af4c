r"""SDMLP, the Sparse Distributed Memory MLP, and its plain Top-K twin.

Bricken, Davies, Singh, Krotov & Kreiman 2023, "Sparse Distributed Memory is a
Continual Learner", ICLR, arXiv:2303.11934. SDM read as a one-hidden-layer
network: the hidden neurons' weight vectors are *addresses*, the input is the
*query*, the neurons within a Hamming radius of the query fire (Top-K), and
the readout layer holds the stored values. The SDMLP keeps what that mapping
demands (the reference code's ``sdm_settings``):

* one hidden layer (1K or 10K neurons), **no bias** in either layer;
* inputs and neuron addresses **L2-normalised** (so the pre-activation is the
  cosine similarity :math:`\hat a_i^\top \hat q`); addresses are re-normalised after
  every optimizer step (:meth:`SDMLP.enforce_constraints`, called by
  :class:`avalanche_sparse.strategies.SDMPlugin`);
* **non-negative** inputs (ReLU) and weights: the reference clamps *every*
  parameter at 0 after every step (``all_positive_weights``), the readout too;
* Top-K with the GABA switch (:class:`avalanche_sparse.layers.GABASwitchTopK`);
* the readout is a plain (un-normalised) linear layer.

Order of the constraints after a step, as in the reference: clamp at 0, then
normalise the addresses. A zero input gives a zero query (no NaN: the norm is
floored at ``eps``), hence no active neuron and all-zero logits.

:class:`TopKMLP` is the "Top-K without the SDM modifications" baseline of the
paper (reference ``FFN_TOP_K``): biases, no normalisation, signed weights,
mask-style Top-K (:class:`~avalanche_sparse.layers.KWinners` with
``boost_strength=0``) with k annealed linearly from ``k_max`` (all neurons) to
``k`` over ``k_transition_epochs``.
"""
from __future__ import annotations

import warnings
from numbers import Real
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from avalanche_sparse.layers.kwinners import KWinners
from avalanche_sparse.layers.topk import GABASwitchTopK, _check_int, linear_k_schedule

__all__ = ["SDMLP", "TopKMLP", "stale_momentum_optimizer", "warn_stale_momentum",
           "StaleMomentumWarning"]

_EPS = 1e-12


class StaleMomentumWarning(UserWarning):
    """An optimizer with momentum / running moments was given to a Top-K network."""


def stale_momentum_optimizer(optimizer: torch.optim.Optimizer) -> Optional[str]:
    """A short description of the momentum-like state ``optimizer`` keeps, or
    ``None`` for plain SGD.

    Momentum-like: SGD with ``momentum > 0``, anything with ``betas`` (Adam,
    AdamW, NAdam, ...), RMSprop (running average of squared gradients, and
    optional momentum), Adagrad (accumulated squares).
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    name = type(optimizer).__name__
    for group in optimizer.param_groups:
        if float(group.get("momentum", 0.0) or 0.0) > 0.0:
            return f"{name}(momentum={group['momentum']})"
        if "betas" in group:
            return f"{name}(betas={tuple(group['betas'])})"
    if isinstance(optimizer, (torch.optim.RMSprop, torch.optim.Adagrad)):
        return name
    return None


def warn_stale_momentum(optimizer: torch.optim.Optimizer, where: str = "SDMLP") -> bool:
    """Warn (:class:`StaleMomentumWarning`) when ``optimizer`` keeps momentum-like
    state; return whether it warned.

    Bricken et al. 2023 (section 4, "stale momentum"): in a Top-K network most
    neurons get no gradient on most steps, but momentum and Adam moments keep
    moving them with out-of-date averages, which kills neurons and increases
    forgetting; plain SGD is recommended for continual learning.
    """
    what = stale_momentum_optimizer(optimizer)
    if what is None:
        return False
    warnings.warn(
        f"{where}: optimizer {what} keeps momentum-like state; with Top-K activations that "
        "momentum goes stale (inactive neurons keep being updated with out-of-date averages), "
        "which kills neurons and increases forgetting (Bricken et al. 2023). Plain SGD "
        "(momentum=0) is recommended for continual learning.",
        StaleMomentumWarning, stacklevel=3)
    return True


def _check_schedule(k: int, k_max: Optional[int], n: int, k_transition_epochs: float) -> tuple[int, float]:
    k_max = k if k_max is None else _check_int("k_max", k_max, k, n)
    if isinstance(k_transition_epochs, bool) or not isinstance(k_transition_epochs, Real):
        raise TypeError(f"k_transition_epochs must be a number, got {type(k_transition_epochs).__name__}")
    k_transition_epochs = float(k_transition_epochs)
    if not k_transition_epochs >= 0.0:
        raise ValueError(f"k_transition_epochs must be >= 0, got {k_transition_epochs}")
    return k_max, k_transition_epochs


def _affine(values, n_channels: int, name: str) -> Optional[Tensor]:
    if values is None:
        return None
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if t.numel() not in (1, n_channels):
        raise ValueError(f"{name} must have 1 or {n_channels} values, got {t.numel()}")
    return t


class _KScheduleMixin:
    """Linear k annealing ``k_max -> k_min`` over ``k_transition_epochs``."""

    k_min: int
    k_max: int
    k_transition_epochs: float

    def current_k(self) -> int:  # pragma: no cover - implemented by the models
        raise NotImplementedError

    def set_k(self, k: int) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def anneals_k(self) -> bool:
        """Whether k follows a schedule (``k_max > k_min``)."""
        return self.k_max > self.k_min

    def update_k(self, epochs: float) -> int:
        """Set k for ``epochs`` training epochs done so far (fractional allowed);
        returns the new k. A no-op without a schedule."""
        if not self.anneals_k:
            return self.current_k()
        k = linear_k_schedule(self.k_max, self.k_min, self.k_transition_epochs, epochs)
        self.set_k(k)
        return k


class SDMLP(_KScheduleMixin, nn.Module):
    r"""The SDM multilayer perceptron (Bricken et al. 2023).

    ``x -> flatten -> [x*std+mean] -> ReLU -> x/||x|| -> W_a x (no bias) ->
    GABA-switch Top-K -> W_v h (no bias)``, with the rows of :math:`W_a` unit
    norm and, with ``positive_weights``, :math:`W_a, W_v \ge 0`.

    :param input_size: number of input features (images are flattened).
    :param n_classes: readout size.
    :param n_neurons: hidden neurons (1000 in the paper; 10000 for "SDM 10K").
    :param k: active neurons (the reference's ``k_min``, 10 by default; 1 for
        the "k=1" ablation), ``1 <= k <= n_neurons``.
    :param k_max: start of an optional linear k annealing schedule
        (``k_max -> k`` over ``k_transition_epochs``); ``None``: fixed k, as in
        the paper's SDMLP (``GABA_SWITCH_ACT_BIN``).
    :param k_transition_epochs: length of that schedule in training epochs.
    :param gaba_switch_activations: :math:`T` of the GABA switch (``None``:
        plain subtractive Top-K). Reference default 500,000; Split MNIST runs
        5,000,000.
    :param positive_weights: clamp all weights at 0 and rectify the inputs
        (the paper's setting).
    :param input_mean, input_std: if given, inputs are first mapped back with
        ``x * std + mean`` (per channel), i.e. the benchmark's ``Normalize`` is
        undone and the model sees ``[0, 1]`` pixels as in the reference.
    """

    def __init__(
        self, input_size: int = 784, n_classes: int = 10, *, n_neurons: int = 1000, k: int = 10,
        k_max: Optional[int] = None, k_transition_epochs: float = 0.0,
        gaba_switch_activations: Optional[int] = 500_000, positive_weights: bool = True,
        input_mean: Optional[Sequence[float] | float] = None,
        input_std: Optional[Sequence[float] | float] = None, input_channels: int = 1,
    ) -> None:
        super().__init__()
        self.input_size = _check_int("input_size", input_size, 1)
        self.n_classes = _check_int("n_classes", n_classes, 1)
        self.n_neurons = _check_int("n_neurons", n_neurons, 1)
        self.k_min = _check_int("k", k, 1, self.n_neurons)
        self.k_max, self.k_transition_epochs = _check_schedule(self.k_min, k_max, self.n_neurons,
                                                               k_transition_epochs)
        self.positive_weights = bool(positive_weights)
        if (input_mean is None) != (input_std is None):
            raise ValueError("input_mean and input_std must be given together")
        self.input_channels = _check_int("input_channels", input_channels, 1)
        mean = _affine(input_mean, self.input_channels, "input_mean")
        std = _affine(input_std, self.input_channels, "input_std")
        if std is not None and not bool((std > 0).all()):
            raise ValueError(f"input_std must be > 0, got {std.tolist()}")
        self.register_buffer("input_mean", mean)
        self.register_buffer("input_std", std)
        self.addresses = nn.Linear(self.input_size, self.n_neurons, bias=False)
        self.top_k = GABASwitchTopK(self.n_neurons, self.k_max,
                                    gaba_switch_activations=gaba_switch_activations)
        self.readout = nn.Linear(self.n_neurons, self.n_classes, bias=False)
        self.enforce_constraints()

    # -- constraints -------------------------------------------------------
    @torch.no_grad()
    def enforce_constraints(self) -> None:
        """Clamp all weights at 0 (if ``positive_weights``), then L2-normalise
        every neuron address (row of ``addresses.weight``). Call after every
        optimizer step (the plugin does). A row that is all zero stays zero."""
        if self.positive_weights:
            for p in self.parameters():
                p.clamp_(min=0.0)
        w = self.addresses.weight
        w.div_(w.norm(dim=1, keepdim=True).clamp_(min=_EPS))

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> bool:
        """Warn (:class:`StaleMomentumWarning`, not an error) if ``optimizer``
        keeps momentum; return whether it warned."""
        return warn_stale_momentum(optimizer, where=type(self).__name__)

    # -- k -----------------------------------------------------------------
    def current_k(self) -> int:
        return self.top_k.k

    def set_k(self, k: int) -> None:
        self.top_k.set_k(k)

    # -- forward -----------------------------------------------------------
    def _prepare(self, x: Tensor) -> Tensor:
        if self.input_mean is not None:
            c = self.input_mean.numel()
            if c > 1:
                if x.dim() < 2 or x.shape[1] != c:
                    raise ValueError(f"SDMLP with {c}-channel input_mean expects (batch, {c}, ...) inputs, "
                                     f"got {tuple(x.shape)}")
                shape = (1, c) + (1,) * (x.dim() - 2)
                x = x * self.input_std.view(shape) + self.input_mean.view(shape)
            else:
                x = x * self.input_std + self.input_mean
        x = x.flatten(start_dim=1)
        if x.shape[1] != self.input_size:
            raise ValueError(f"SDMLP(input_size={self.input_size}) got inputs with {x.shape[1]} features")
        if self.positive_weights:
            x = F.relu(x)
        return x / x.norm(dim=1, keepdim=True).clamp(min=_EPS)

    def hidden(self, x: Tensor) -> Tensor:
        """Top-K activations of the hidden layer, shape ``(batch, n_neurons)``."""
        return self.top_k(self.addresses(self._prepare(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.hidden(x))

    def extra_repr(self) -> str:
        s = f"k={self.k_min}, positive_weights={self.positive_weights}"
        if self.anneals_k:
            s += f", k_max={self.k_max}, k_transition_epochs={self.k_transition_epochs}"
        return s


class TopKMLP(_KScheduleMixin, nn.Module):
    """One-hidden-layer MLP with a mask-style Top-K activation and nothing else
    from SDM (the paper's "Top-K" baseline, reference ``FFN_TOP_K``).

    ``flatten -> Linear (bias) -> KWinners(k, boost 0, relu) -> Linear (bias)``;
    k anneals linearly from ``k_max`` (default: all neurons) to ``k`` over
    ``k_transition_epochs`` (reference ``LINEAR_DECAY_MASK``; 200 epochs in its
    Split MNIST runs). ``k_transition_epochs=0`` gives a fixed k.

    :param k: final number of active neurons, ``1 <= k <= n_neurons``.
    :param k_max: starting k (``None``: ``n_neurons``).
    """

    def __init__(
        self, input_size: int = 784, n_classes: int = 10, *, n_neurons: int = 1000, k: int = 10,
        k_max: Optional[int] = None, k_transition_epochs: float = 0.0, bias: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = _check_int("input_size", input_size, 1)
        self.n_classes = _check_int("n_classes", n_classes, 1)
        self.n_neurons = _check_int("n_neurons", n_neurons, 1)
        self.k_min = _check_int("k", k, 1, self.n_neurons)
        if k_max is None:
            k_max = self.n_neurons if float(k_transition_epochs) > 0 else self.k_min
        self.k_max, self.k_transition_epochs = _check_schedule(self.k_min, k_max, self.n_neurons,
                                                               k_transition_epochs)
        self.fc = nn.Linear(self.input_size, self.n_neurons, bias=bias)
        self.top_k = KWinners(self.n_neurons, percent_on=self.k_max / self.n_neurons,
                              k_inference_factor=1.0, boost_strength=0.0, break_ties=True, relu=True)
        self.top_k.k = self.top_k.k_inference = self.k_max
        self.readout = nn.Linear(self.n_neurons, self.n_classes, bias=bias)

    def current_k(self) -> int:
        return self.top_k.k

    def set_k(self, k: int) -> None:
        k = _check_int("k", k, 1, self.n_neurons)
        self.top_k.k = self.top_k.k_inference = k

    def hidden(self, x: Tensor) -> Tensor:
        """Top-K activations of the hidden layer, shape ``(batch, n_neurons)``."""
        x = x.flatten(start_dim=1)
        if x.shape[1] != self.input_size:
            raise ValueError(f"TopKMLP(input_size={self.input_size}) got inputs with {x.shape[1]} features")
        return self.top_k(self.fc(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.hidden(x))
