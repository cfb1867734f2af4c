r"""Active dendrites: dendritic segments and dendritic (context-gated) layers.

Each unit (neuron) :math:`i` of a layer has :math:`S` *dendritic segments*,
each a weight vector :math:`u_{ij} \in \mathbb{R}^{C}` over a *context*
vector :math:`c \in \mathbb{R}^{C}`. The segment responses are

.. math::

    d_{bij} = u_{ij} \cdot c_b \qquad
    (\texttt{einsum("ijk,bk->bij")}, \text{ all units and segments in one matmul}),

and the feed-forward response :math:`y_{bi} = w_i \cdot x_b + b_i` of the unit is
modulated by the *winning* segment. With the absolute-max gate (the paper's
choice) the winner is the segment with the largest :math:`|d|`, and its signed
response passes through a sigmoid:

.. math::

    j^*_{bi} = \arg\max_j |d_{bij}|, \qquad
    \hat y_{bi} = y_{bi}\,\sigma\!\left(d_{b i j^*_{bi}}\right).

So a strongly negative winner silences the unit and a strongly positive one
lets it through. Other gates offered: ``"max"`` (winner = largest signed
response) and ``"bias"`` (:math:`\hat y = y + \max_j d_{bij}`, the additive
variant). With one segment every gate reduces to the same winner, i.e. the
sigmoid of a (sparse) linear function of the context.

Reference: Iyer, Grewal, Velu, Souza, Forest & Ahmad (2022), "Avoiding
Catastrophe: Active Dendrites Enable Multi-Task Learning in Dynamic
Environments", Front. Neurorobot. 16:846219 (arXiv:2201.00042); Grewal, Forest,
Cohen & Ahmad (2021), "Going Beyond the Point Neuron: Active Dendrites and Sparse
Representations for Continual Learning", bioRxiv 10.1101/2021.10.25.465651.
The semantics follow Numenta's ``nupic.research`` dendrites framework (read for
the facts only; this is our own code).

Initialisation ("modified" Kaiming uniform, same reference): a weight with
fan-in :math:`F`, weight density :math:`w` (fraction of non-zero weights) fed
by inputs of density :math:`a` (fraction of non-zero inputs) is drawn from

.. math::

    \mathcal{U}\bigl(-h, h\bigr), \qquad h = 1 / \sqrt{a\, w\, F}.

For the dendrites, :math:`F` is ``dim_context`` and :math:`a` the density of the
context (``context_percent_on``).

Shared contexts
---------------
Usually many samples share one context (a whole training batch uses the
prototype of its task; at test time every sample gets one of a few stored
prototypes). :meth:`DendriticLayer.forward` therefore accepts the distinct
context rows once plus ``context_index`` (which row each sample uses): the
result is exactly the same as with one row per sample, but the segment cost
scales with the number of distinct contexts instead of the batch size.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .sparse_weights import SparseWeights, _draw_zero_mask

__all__ = [
    "GATES",
    "DendriticOutput",
    "dendritic_absolute_max_gate",
    "dendritic_max_gate",
    "dendritic_bias",
    "apply_dendrites",
    "winning_segments",
    "modified_kaiming_uniform_",
    "DendriteSegments",
    "DendriticLayer",
]

#: names of the ways a layer combines the winning segment with its output
GATES = ("absolute_max", "max", "bias")


class DendriticOutput(NamedTuple):
    """Output of a gate: modulated ``values`` and the winning segment ``indices``."""

    values: Tensor
    indices: Tensor


# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------
def _int_at_least(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _fraction(value: object, name: str) -> float:
    """A sparsity: a finite real in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a real number in [0, 1), got {value!r}")
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} (fraction of zero weights) must be in [0, 1), got {v}")
    return v


def _density(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a real number in (0, 1], got {value!r}")
    v = float(value)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} (a density) must be in (0, 1], got {v}")
    return v


def _check_responses(y: Tensor, d: Tensor) -> None:
    if d.dim() != y.dim() + 1 or d.shape[:-1] != y.shape:
        raise ValueError(
            f"dendrite responses must have shape {tuple(y.shape)} + (num_segments,), "
            f"got {tuple(d.shape)}"
        )


# ----------------------------------------------------------------------------
# functional gates
# ----------------------------------------------------------------------------
def winning_segments(d: Tensor, gate: str = "absolute_max") -> tuple[Tensor, Tensor]:
    """Response and index of the winning segment along the last axis of ``d``.

    ``"absolute_max"``: largest :math:`|d|`, signed response returned;
    ``"max"`` and ``"bias"``: largest signed response. Gradient flows to the
    winner only.
    """
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if d.shape[-1] == 1:
        win = d.squeeze(-1)
        return win, torch.zeros(win.shape, dtype=torch.long, device=d.device)
    if gate == "absolute_max":
        idx = d.detach().abs().argmax(-1)
        return d.gather(-1, idx.unsqueeze(-1)).squeeze(-1), idx
    win, idx = d.max(-1)
    return win, idx


def _combine(y: Tensor, win: Tensor, gate: str) -> Tensor:
    return y + win if gate == "bias" else y * torch.sigmoid(win)


def dendritic_absolute_max_gate(y: Tensor, d: Tensor) -> DendriticOutput:
    r""":math:`y\,\sigma(d_{j^*})` with :math:`j^* = \arg\max_j |d_j|` (sign kept).

    :param y: feed-forward responses ``(batch, units)``.
    :param d: segment responses ``(batch, units, num_segments)``.
    """
    return apply_dendrites(y, d, "absolute_max")


def dendritic_max_gate(y: Tensor, d: Tensor) -> DendriticOutput:
    r""":math:`y\,\sigma(\max_j d_j)` (winner = largest signed response)."""
    return apply_dendrites(y, d, "max")


def dendritic_bias(y: Tensor, d: Tensor) -> DendriticOutput:
    r""":math:`y + \max_j d_j` (the additive, biasing variant)."""
    return apply_dendrites(y, d, "bias")


def apply_dendrites(y: Tensor, d: Tensor, gate: str = "absolute_max") -> DendriticOutput:
    """Combine feed-forward responses ``y`` ``(batch, units)`` with segment
    responses ``d`` ``(batch, units, num_segments)`` by ``gate`` (one of
    :data:`GATES`)."""
    _check_responses(y, d)
    win, idx = winning_segments(d, gate)
    return DendriticOutput(_combine(y, win, gate), idx)


# ----------------------------------------------------------------------------
# initialisation
# ----------------------------------------------------------------------------
@torch.no_grad()
def modified_kaiming_uniform_(
    weight: Tensor,
    *,
    fan_in: int,
    input_density: float = 1.0,
    weight_density: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``weight`` from :math:`\mathcal{U}(-h, h)`,
    :math:`h = 1/\sqrt{a\,w\,F}` (``input_density`` :math:`a`,
    ``weight_density`` :math:`w`, ``fan_in`` :math:`F`), in place.

    With :math:`a = w = 1` this is PyTorch's default ``nn.Linear`` weight init.
    Pruned weights must be zeroed again afterwards (``rezero_weights``).
    """
    _int_at_least(fan_in, "fan_in", 1)
    a = _density(input_density, "input_density")
    w = _density(weight_density, "weight_density")
    bound = 1.0 / math.sqrt(a * w * fan_in)
    return weight.uniform_(-bound, bound, generator=generator)


# ----------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------
class DendriteSegments(nn.Module):
    r"""``num_segments`` dendritic segments for each of ``num_units`` units.

    ``forward(context)`` returns the responses :math:`d_{bij} = u_{ij}\cdot c_b`,
    shape ``(batch, num_units, num_segments)``, computed for all units and
    segments with one matrix product.

    :param num_units: units (neurons), ``>= 1``.
    :param num_segments: segments per unit, ``>= 1``.
    :param dim_context: length of the context vector, ``>= 1``.
    :param sparsity: fraction of ZERO weights in each segment, in [0, 1); each
        (unit, segment) keeps exactly ``round((1 - sparsity) * dim_context)``
        weights, fixed at construction (bool buffer ``zero_mask``, ``True`` =
        pruned; ``None`` when ``sparsity == 0``). Call :meth:`rezero_weights`
        after every optimizer step.
    :param bias: one bias per (unit, segment).
    :param seed: seed of the mask generator (``None``: torch's global RNG).

    Weights start as PyTorch's default linear init per segment,
    :math:`\mathcal{U}(\pm 1/\sqrt{\text{dim\_context}})`; models usually
    re-initialise them with :func:`modified_kaiming_uniform_`.
    """

    zero_mask: Tensor | None

    def __init__(
        self,
        num_units: int,
        num_segments: int,
        dim_context: int,
        *,
        sparsity: float = 0.0,
        bias: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.num_units = _int_at_least(num_units, "num_units", 1)
        self.num_segments = _int_at_least(num_segments, "num_segments", 1)
        self.dim_context = _int_at_least(dim_context, "dim_context", 1)
        self.sparsity = _fraction(sparsity, "sparsity")
        self.num_nonzero = int(round((1.0 - self.sparsity) * dim_context))
        if self.num_nonzero < 1:
            raise ValueError(
                f"sparsity={self.sparsity} keeps round((1 - sparsity) * {dim_context}) = 0 context "
                f"weights per segment; lower sparsity"
            )
        self.weights = nn.Parameter(torch.empty(num_units, num_segments, dim_context))
        if bias:
            self.biases = nn.Parameter(torch.empty(num_units, num_segments))
        else:
            self.register_parameter("biases", None)
        if self.sparsity > 0.0:
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
            mask = _draw_zero_mask(num_units * num_segments, dim_context, self.num_nonzero, gen)
            self.register_buffer("zero_mask", mask.view(num_units, num_segments, dim_context))
        else:
            self.register_buffer("zero_mask", None)
        self.reset_parameters()
        self.register_load_state_dict_post_hook(lambda module, keys: module.rezero_weights())

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Default linear init per segment, then re-zero the pruned weights."""
        bound = 1.0 / math.sqrt(self.dim_context)
        self.weights.uniform_(-bound, bound)
        if self.biases is not None:
            self.biases.uniform_(-bound, bound)
        self.rezero_weights()

    @property
    def density(self) -> float:
        """Fraction of non-zero segment weights, ``1 - sparsity``."""
        return 1.0 - self.sparsity

    @torch.no_grad()
    def rezero_weights(self) -> None:
        """Zero the pruned segment weights again (after an optimizer step)."""
        if self.zero_mask is not None:
            self.weights.masked_fill_(self.zero_mask, 0.0)

    def forward(self, context: Tensor) -> Tensor:
        if context.dim() != 2 or context.shape[1] != self.dim_context:
            raise ValueError(
                f"context must have shape (batch, dim_context={self.dim_context}), "
                f"got {tuple(context.shape)}"
            )
        # einsum("ijk,bk->bij", weights, context) as one matrix product
        d = F.linear(context, self.weights.view(-1, self.dim_context))
        d = d.view(context.shape[0], self.num_units, self.num_segments)
        if self.biases is not None:
            d = d + self.biases
        return d

    def extra_repr(self) -> str:
        return (
            f"num_units={self.num_units}, num_segments={self.num_segments}, "
            f"dim_context={self.dim_context}, sparsity={self.sparsity}, bias={self.biases is not None}"
        )


class DendriticLayer(nn.Module):
    r"""A (sparse) linear layer whose units are gated by dendritic segments.

    ``forward(x, context)`` computes :math:`y = Wx + b` (``W`` optionally
    with fixed random sparsity, :class:`~avalanche_sparse.layers.SparseWeights`),
    the segment responses to ``context`` and combines them by ``gate``
    (default: the absolute-max sigmoid gate; see the module docstring).
    The winning segment of every (sample, unit) of the last call is kept in
    :attr:`last_winning_segments` (for analysis; no gradient).

    :param in_features: input size, ``>= 1``.
    :param out_features: units, ``>= 1``.
    :param num_segments: segments per unit, ``>= 1``.
    :param dim_context: context length, ``>= 1``.
    :param weight_sparsity: fraction of ZERO feed-forward weights, in [0, 1)
        (0: a plain ``nn.Linear``).
    :param dendrite_sparsity: fraction of ZERO segment weights, in [0, 1).
    :param bias: feed-forward bias.
    :param dendrite_bias: one bias per segment.
    :param gate: one of :data:`GATES`.
    :param seed: seed of both masks (``None``: torch's global RNG).

    Pruned weights are not masked in ``forward``: call
    :func:`avalanche_sparse.layers.rezero_weights` on the model after every
    optimizer step.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        dim_context: int,
        *,
        weight_sparsity: float = 0.0,
        dendrite_sparsity: float = 0.0,
        bias: bool = True,
        dendrite_bias: bool = False,
        gate: str = "absolute_max",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _int_at_least(in_features, "in_features", 1)
        self.out_features = _int_at_least(out_features, "out_features", 1)
        _int_at_least(num_segments, "num_segments", 1)
        if gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
        self.gate = gate
        self.weight_sparsity = _fraction(weight_sparsity, "weight_sparsity")
        linear = nn.Linear(in_features, out_features, bias=bias)
        self.linear: nn.Module = (
            SparseWeights(linear, self.weight_sparsity, seed=seed) if self.weight_sparsity > 0 else linear
        )
        self.segments = DendriteSegments(
            out_features, num_segments, dim_context, sparsity=dendrite_sparsity, bias=dendrite_bias,
            seed=None if seed is None else seed + 1,
        )
        self._winners: Tensor | None = None
        self._winners_index: Tensor | None = None

    # -- shapes and weights ------------------------------------------------
    @property
    def num_segments(self) -> int:
        return self.segments.num_segments

    @property
    def dim_context(self) -> int:
        return self.segments.dim_context

    @property
    def weight(self) -> Tensor:
        """Feed-forward weight ``(out_features, in_features)``."""
        return self.linear.weight

    @property
    def segment_weights(self) -> Tensor:
        """Segment weights ``(out_features, num_segments, dim_context)``."""
        return self.segments.weights

    @torch.no_grad()
    def init_modified(self, input_density: float = 1.0, context_density: float = 1.0) -> None:
        r"""The paper's "modified" initialisation of both weight sets:
        feed-forward :math:`\mathcal{U}(\pm 1/\sqrt{a\,w\,F})` with the
        layer's input density ``input_density``, its weight density and
        ``in_features``; segments likewise with ``context_density``, the
        segment density and ``dim_context``. Biases are left as they are."""
        modified_kaiming_uniform_(self.linear.weight, fan_in=self.in_features, input_density=input_density,
                                  weight_density=1.0 - self.weight_sparsity)
        modified_kaiming_uniform_(self.segments.weights, fan_in=self.dim_context,
                                  input_density=context_density, weight_density=self.segments.density)
        if isinstance(self.linear, SparseWeights):
            self.linear.rezero_weights()
        self.segments.rezero_weights()

    # -- forward -------------------------------------------------------------
    @property
    def last_winning_segments(self) -> Tensor | None:
        """Winning segment per (sample, unit) of the last forward, ``(batch, units)``."""
        if self._winners is None:
            return None
        if self._winners_index is None:
            return self._winners
        return self._winners.index_select(0, self._winners_index)

    def forward(self, x: Tensor, context: Tensor, context_index: Tensor | None = None) -> Tensor:
        """:param x: inputs ``(batch, in_features)``.
        :param context: ``(batch, dim_context)``, one row per sample; or, with
            ``context_index``, ``(n, dim_context)`` distinct rows; a single
            ``(dim_context,)`` vector is shared by the whole batch.
        :param context_index: optional ``(batch,)`` int64 row of ``context``
            for each sample.
        """
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, in_features={self.in_features}), got {tuple(x.shape)}"
            )
        if context.dim() == 1:
            context = context.unsqueeze(0)
            if context_index is None:
                context_index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        if context.dim() != 2 or context.shape[1] != self.dim_context:
            raise ValueError(
                f"context must have shape (batch, dim_context={self.dim_context}) or "
                f"(dim_context,), got {tuple(context.shape)}"
            )
        if context_index is None:
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context has {context.shape[0]} rows but x has {x.shape[0]} samples; "
                    f"pass context_index to share rows between samples"
                )
        else:
            if context_index.dim() != 1 or context_index.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context_index must have shape ({x.shape[0]},), got {tuple(context_index.shape)}"
                )
            if context_index.dtype != torch.long:
                raise TypeError(f"context_index must be int64, got {context_index.dtype}")
        y = self.linear(x)
        d = self.segments(context)
        if context_index is None:
            out = apply_dendrites(y, d, self.gate)
            self._winners, self._winners_index = out.indices.detach(), None
            return out.values
        # winners per distinct context row, then one gather to the samples
        win, idx = winning_segments(d, self.gate)
        self._winners, self._winners_index = idx.detach(), context_index
        if self.gate == "bias":
            return y + win.index_select(0, context_index)
        return y * torch.sigmoid(win).index_select(0, context_index)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_segments={self.num_segments}, dim_context={self.dim_context}, "
            f"weight_sparsity={self.weight_sparsity}, gate={self.gate!r}"
        )
