r"""Top-K activation with the GABA switch (Bricken et al. 2023).

Sparse Distributed Memory approximates "every neuron within Hamming radius d
of the query fires" by keeping the :math:`k` most excited neurons (Top-K).
Implemented as subtractive inhibition, as in the paper: an inhibitory
interneuron reads the :math:`(k+1)`-th largest rectified activation
:math:`h` of each sample and subtracts it from every neuron, so that exactly
the :math:`k` neurons above it stay positive.

The *GABA switch* (Bricken, Davies, Singh, Krotov & Kreiman 2023, "Sparse
Distributed Memory is a Continual Learner", ICLR, arXiv:2303.11934, section
3 and appendix; after Gozel & Gerstner 2021) makes that interneuron
*excitatory* for young neurons: neuron :math:`i` keeps a count :math:`c_i`
of the times it has been active (output :math:`> 0`) during training, and

.. math::

    g_i = \operatorname{clamp}\!\left(-1 + \frac{2\,c_i}{T},\ -1,\ 1\right),
    \qquad
    y_i = \operatorname{ReLU}\bigl(\operatorname{ReLU}(x_i) - g_i\,h\bigr),
    \qquad
    h = \operatorname{sg}\bigl[\text{(k+1)-th largest of } \operatorname{ReLU}(x)\bigr],

with :math:`T` = ``gaba_switch_activations`` (the reference's
``num_binary_activations_for_gaba_switch``: 500,000 by default, 5,000,000 in
its Split MNIST runs) and :math:`\operatorname{sg}` a stop-gradient. A fresh
neuron (:math:`g = -1`) is *excited* by :math:`h` and fires for every input, so
it receives gradient and moves toward the data; once it has fired
:math:`T/2` times :math:`g` crosses 0 and it becomes inhibited like every other
neuron, until at :math:`c_i \ge T` the layer is plain Top-K (subtractive). This
keeps neurons from dying (never reaching the Top-K).

``gaba_switch_activations=None`` gives plain subtractive Top-K
(:math:`g \equiv 1`, the reference's ``FLAT_SUBTRACT``).

Differences from the reference implementation (``models/TopK_Act.py`` of
TrentBrick/SDMContinualLearner), on purpose:

* counts grow in training mode only (the reference also counted during
  validation passes);
* the counts are a registered buffer (saved in the ``state_dict``), not a
  plain tensor attribute restored from the checkpoint by hand.

Ties: with :math:`g = 1` every neuron *strictly* above the (k+1)-th value stays
active, so tied values at the threshold can give fewer than :math:`k` winners
(as in the reference). When ``k == n`` the threshold is the smallest value
(the reference caps the ``topk`` size at ``n`` the same way).
"""
from __future__ import annotations

from numbers import Integral
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["GABASwitchTopK", "gaba_response", "linear_k_schedule"]


def gaba_response(counts: Tensor, switch_activations: Optional[int]) -> Tensor:
    r""":math:`g = \operatorname{clamp}(-1 + 2c/T, -1, 1)` per neuron (float32);
    all ones when ``switch_activations`` is ``None`` (no switch)."""
    if switch_activations is None:
        return torch.ones(counts.shape, dtype=torch.float32, device=counts.device)
    g = counts.to(torch.float32) * (2.0 / float(switch_activations)) - 1.0
    return g.clamp_(-1.0, 1.0)


def linear_k_schedule(k_max: int, k_min: int, transition_epochs: float, epochs: float) -> int:
    r"""Linear annealing of k (the reference's ``LINEAR_DECAY_*`` approaches):
    :math:`k(e) = \max(k_{min}, \lfloor k_{max} - (k_{max} - k_{min})\, e / E \rfloor)`
    after :math:`e` training epochs (fractional allowed), :math:`E` =
    ``transition_epochs``; ``k_min`` once :math:`e \ge E` (or when :math:`E = 0`)."""
    if transition_epochs <= 0 or epochs >= transition_epochs:
        return int(k_min)
    k = k_max - (k_max - k_min) * (float(epochs) / float(transition_epochs))
    return int(max(k_min, min(k_max, int(k))))


def _check_int(name: str, value, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be in {rng}, got {value}")
    return value


class GABASwitchTopK(nn.Module):
    r"""Subtractive Top-K over the last dimension with the GABA switch.

    :param n: number of neurons (size of the last input dimension), ``>= 1``.
    :param k: number of active neurons, ``1 <= k <= n``; change it later with
        :meth:`set_k` (k annealing).
    :param gaba_switch_activations: :math:`T`, activations after which a neuron's
        interneuron input has switched from excitation to inhibition; ``None``
        disables the switch (plain subtractive Top-K).

    Buffer ``activation_counts`` (int64, shape ``(n,)``): :math:`c_i`, the number
    of training samples for which neuron :math:`i` was active.
    """

    activation_counts: Tensor

    def __init__(self, n: int, k: int, *, gaba_switch_activations: Optional[int] = 500_000) -> None:
        super().__init__()
        self.n = _check_int("n", n, 1)
        self.k = _check_int("k", k, 1, self.n)
        if gaba_switch_activations is not None:
            gaba_switch_activations = _check_int("gaba_switch_activations", gaba_switch_activations, 1)
        self.gaba_switch_activations = gaba_switch_activations
        self.register_buffer("activation_counts", torch.zeros(self.n, dtype=torch.int64))

    def set_k(self, k: int) -> None:
        """Set the number of active neurons (``1 <= k <= n``)."""
        self.k = _check_int("k", k, 1, self.n)

    def set_gaba_switch_activations(self, value: Optional[int]) -> None:
        """Set :math:`T` (``None`` disables the switch)."""
        self.gaba_switch_activations = None if value is None else _check_int(
            "gaba_switch_activations", value, 1)

    def gaba_response(self) -> Tensor:
        """Current :math:`g` per neuron, shape ``(n,)``."""
        return gaba_response(self.activation_counts, self.gaba_switch_activations)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.n:
            raise ValueError(f"GABASwitchTopK(n={self.n}) expects input of shape (batch, {self.n}); "
                             f"got {tuple(x.shape)}")
        x = F.relu(x)
        kk = min(self.k + 1, self.n)
        inhib = x.detach().topk(kk, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)
        if self.gaba_switch_activations is None:
            y = F.relu(x - inhib)
        else:
            g = self.gaba_response().to(x.dtype)
            y = F.relu(x - g * inhib)
        if self.training:
            with torch.no_grad():
                active = (y.detach().reshape(-1, self.n) > 0).sum(0)
                self.activation_counts.add_(active)
        return y

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}, gaba_switch_activations={self.gaba_switch_activations}"
