r"""Fixed random weight sparsity for ``nn.Linear`` and ``nn.Conv2d``.

Each output unit (row of a linear weight, output channel of a convolution) is
connected to a fixed random subset of its inputs; all other weights are zero
(Ahmad & Scheinkman 2019, "How Can We Be So Dense? The Benefits of Using Highly
Sparse Representations", arXiv:1903.11257). The semantics follow
``nupic.torch``'s ``SparseWeights`` / ``SparseWeights2d``; the code is our own.

With fan-in :math:`F` (``in_features``, or ``in_channels/groups * kh * kw``)
and ``sparsity`` :math:`s` (fraction of ZEROS), every output unit keeps exactly

.. math::

    m = \mathrm{round}\bigl((1 - s)\,F\bigr)

inputs. The positions of the zeros are a bool buffer ``zero_mask`` (``True`` =
pruned) with the weight's shape, saved in the ``state_dict``. Masks are drawn
from a ``torch.Generator`` (seeded with ``seed``, or from torch's global RNG
when ``seed`` is ``None``), all rows at once.

.. warning::
   ``forward`` does **not** re-apply the mask (``nupic.torch`` stopped doing
   so in 2020). Any optimizer step - and in particular Adam or momentum, whose
   state keeps moving pruned weights - makes them non-zero again, so
   :meth:`SparseWeightsBase.rezero_weights` (or
   :func:`avalanche_sparse.layers.rezero_weights` on the whole model) must be
   called after **every** optimizer step. The weights are zeroed at
   construction and after ``load_state_dict``.

.. warning::
   The deprecated keyword ``weight_sparsity`` is the fraction of NON-zero
   weights (the density), the opposite of ``sparsity``. In ``nupic.torch`` it
   was the second positional argument, so ``SparseWeights(linear, 0.1)`` there
   meant 10 % non-zero weights; here the second positional argument is
   ``sparsity`` and the same call means 10 % zeros.
"""
from __future__ import annotations

import math
import warnings
from numbers import Real

import torch
from torch import Tensor, nn

__all__ = ["SparseWeightsBase", "SparseWeights", "SparseWeights2d", "normalize_sparse_weights"]


def _resolve_sparsity(sparsity: float | None, weight_sparsity: float | None) -> float:
    def real(v: object, name: str) -> float:
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a finite real number, got {v!r}")
        return float(v)

    if sparsity is not None and weight_sparsity is not None:
        raise ValueError(
            "give either sparsity (fraction of zeros) or the deprecated weight_sparsity "
            "(fraction of non-zeros), not both"
        )
    if weight_sparsity is not None:
        density = real(weight_sparsity, "weight_sparsity")
        if not 0.0 < density <= 1.0:
            raise ValueError(
                f"weight_sparsity (the fraction of NON-zero weights) must be in (0, 1], got {density}"
            )
        warnings.warn(
            f"weight_sparsity is deprecated and means the fraction of NON-zero weights (density): "
            f"weight_sparsity={density} keeps {density:.0%} of the weights, i.e. sparsity={1.0 - density:.6g}. "
            f"Pass sparsity=1 - weight_sparsity instead.",
            DeprecationWarning,
            stacklevel=4,
        )
        return 1.0 - density
    if sparsity is None:
        raise ValueError("sparsity (fraction of zero weights, in [0, 1)) is required")
    s = real(sparsity, "sparsity")
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity (fraction of zero weights) must be in [0, 1), got {s}")
    return s


def _draw_zero_mask(rows: int, fan_in: int, keep: int, generator: torch.Generator | None) -> Tensor:
    """``(rows, fan_in)`` bool mask, ``True`` where a weight is pruned, with
    exactly ``keep`` ``False`` entries per row, uniformly at random."""
    mask = torch.ones(rows, fan_in, dtype=torch.bool)
    if keep == 0:
        return mask
    if keep == fan_in:
        return mask.fill_(False)
    scores = torch.rand(rows, fan_in, generator=generator)
    kept = scores.topk(keep, dim=1, sorted=False).indices
    return mask.scatter_(1, kept, False)


class SparseWeightsBase(nn.Module):
    """Wraps a module whose ``weight`` has one output unit per row of
    ``weight.view(out, -1)``, and prunes a fixed random subset of each row.

    :param module: the wrapped layer (kept as ``self.module``).
    :param sparsity: fraction of ZERO weights per output unit, in [0, 1).
    :param weight_sparsity: deprecated, keyword only: fraction of NON-zero
        weights, in (0, 1]; ``sparsity = 1 - weight_sparsity``.
    :param allow_extremes: allow a mask that keeps no input at all (when
        ``round((1 - sparsity) * fan_in) == 0``); otherwise that is an error.
    :param seed: seed of the mask generator; ``None`` draws from torch's global
        RNG (reproducible under ``torch.manual_seed``).
    """

    zero_mask: Tensor

    def __init__(
        self,
        module: nn.Module,
        sparsity: float | None = None,
        *,
        weight_sparsity: float | None = None,
        allow_extremes: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.sparsity = _resolve_sparsity(sparsity, weight_sparsity)
        self.module = module
        weight = module.weight
        out_units = weight.shape[0]
        self.fan_in = weight[0].numel()
        self.num_nonzero = int(round((1.0 - self.sparsity) * self.fan_in))
        if self.num_nonzero == 0 and not allow_extremes:
            raise ValueError(
                f"sparsity={self.sparsity} keeps round((1 - sparsity) * {self.fan_in}) = 0 inputs per "
                f"unit, i.e. an all-zero layer; lower sparsity (it must leave at least one of "
                f"{self.fan_in} inputs) or pass allow_extremes=True"
            )
        self.allow_extremes = bool(allow_extremes)
        self.seed = seed
        generator = None
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        mask = _draw_zero_mask(out_units, self.fan_in, self.num_nonzero, generator)
        self.register_buffer("zero_mask", mask.view(weight.shape).to(weight.device))
        self._keep: Tensor | None = None
        self._keep_key: tuple | None = None
        self.rezero_weights()
        self.register_load_state_dict_post_hook(_rezero_after_load)

    @property
    def density(self) -> float:
        """Fraction of non-zero weights requested, ``1 - sparsity``."""
        return 1.0 - self.sparsity

    @property
    def weight_sparsity(self) -> float:
        """Deprecated alias of :attr:`density` (fraction of NON-zero weights)."""
        warnings.warn(
            "weight_sparsity is deprecated and is the fraction of NON-zero weights; use density "
            "(or 1 - sparsity)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.density

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    @property
    def bias(self) -> Tensor | None:
        return self.module.bias

    def _keep_mask(self) -> Tensor:
        """``~zero_mask`` as a 0/1 tensor of the weight's dtype and device,
        cached and rebuilt whenever ``zero_mask`` changes (new tensor, new
        device or in-place edit). Multiplying by it is several times faster on
        CPU than ``masked_fill_`` with the bool mask."""
        zm, w = self.zero_mask, self.module.weight
        key = (zm.data_ptr(), zm._version, zm.device, w.dtype, w.device)
        if self._keep_key != key:
            self._keep = (~zm).to(device=w.device, dtype=w.dtype)
            self._keep_key = key
        return self._keep

    @torch.no_grad()
    def rezero_weights(self) -> None:
        """Set the pruned weights back to zero (in place). Only the weights:
        gradients and optimizer state are left alone. (Implemented as a
        product with the 0/1 keep mask, so a pruned weight that has become
        NaN or inf - a diverged run - stays NaN.)"""
        self.module.weight.mul_(self._keep_mask())

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}, nonzero_per_unit={self.num_nonzero}/{self.fan_in}"


def _rezero_after_load(module: nn.Module, incompatible_keys: object) -> None:
    module.rezero_weights()  # type: ignore[operator]


class SparseWeights(SparseWeightsBase):
    """Sparse ``nn.Linear``: each output unit keeps exactly
    ``round((1 - sparsity) * in_features)`` inputs. See the module docstring.

    :param module: an ``nn.Linear``.
    """

    def __init__(
        self,
        module: nn.Linear,
        sparsity: float | None = None,
        *,
        weight_sparsity: float | None = None,
        allow_extremes: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(module, nn.Linear):
            raise TypeError(f"SparseWeights wraps an nn.Linear, got {type(module).__name__}")
        super().__init__(
            module, sparsity, weight_sparsity=weight_sparsity, allow_extremes=allow_extremes, seed=seed
        )


class SparseWeights2d(SparseWeightsBase):
    """Sparse ``nn.Conv2d``: each output channel keeps exactly
    ``round((1 - sparsity) * in_channels/groups * kh * kw)`` of its kernel
    weights. See the module docstring.

    :param module: an ``nn.Conv2d``.
    """

    def __init__(
        self,
        module: nn.Conv2d,
        sparsity: float | None = None,
        *,
        weight_sparsity: float | None = None,
        allow_extremes: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f"SparseWeights2d wraps an nn.Conv2d, got {type(module).__name__}")
        super().__init__(
            module, sparsity, weight_sparsity=weight_sparsity, allow_extremes=allow_extremes, seed=seed
        )


@torch.no_grad()
def normalize_sparse_weights(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    r"""Re-initialise every :class:`SparseWeightsBase` in ``module`` (itself
    included) with PyTorch's default Kaiming-uniform rule, computed for the
    number of *non-zero* inputs instead of the full fan-in:

    .. math::

        \text{fan} = \text{fan\_in}\cdot(1 - s) \;(\text{the kept count}),\qquad
        W, b \sim \mathcal{U}\bigl(-1/\sqrt{\text{fan}},\, 1/\sqrt{\text{fan}}\bigr)

    (the default ``nn.Linear`` init, gain :math:`\sqrt{2/(1+5)}`, gives
    :math:`\sqrt{3}\cdot\text{gain}/\sqrt{\text{fan}} = 1/\sqrt{\text{fan}}`).
    The pruned weights are zeroed again afterwards. Call it once on the
    model (it walks all sub-modules). Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, SparseWeightsBase):
            fan = max(1, m.num_nonzero)
            bound = 1.0 / math.sqrt(fan)
            m.module.weight.uniform_(-bound, bound, generator=generator)
            if m.module.bias is not None:
                m.module.bias.uniform_(-bound, bound, generator=generator)
            m.rezero_weights()
    return module
