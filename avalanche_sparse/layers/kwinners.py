r"""k-winners-take-all activations with boosting (k-WTA).

A k-WTA layer keeps, for every sample, the ``k`` units with the largest
*boosted* activity and sets every other unit to zero (Ahmad & Scheinkman
2019, "How Can We Be So Dense? The Benefits of Using Highly Sparse
Representations", arXiv:1903.11257). The semantics reproduced here are those of
``nupic.torch`` (``KWinners``, ``KWinners2d`` and the functional ``kwinners`` /
``kwinners2d``); this is an independent implementation written from those
semantics, not a copy of that (AGPL-3.0) code.

Boosting
--------
Each unit :math:`i` keeps a running *duty cycle* :math:`d_i`, the fraction of
recent samples in which it was active (output :math:`> 0`). With target density
:math:`a = k / n` and boost strength :math:`\beta \ge 0` the boost factor is

.. math::

    b_i = \exp\bigl(\beta\,(a - d_i)\bigr),

so units that fired less than the target are favoured and over-active units are
penalised. Because :math:`b_i = e^{\beta a}\, e^{-\beta d_i}` and the first factor is
a positive constant, the ranking is computed with :math:`x_i\, e^{-\beta d_i}`,
which selects exactly the same winners. Boosting only decides *who wins*: the
output carries the un-boosted :math:`x_i` of the winners and zero elsewhere, and
the gradient flows through the winners only (:math:`\partial y_i/\partial x_i = 1`
for winners, 0 otherwise).

Duty cycles
-----------
In training mode, after each batch of :math:`B` samples, with :math:`t` the
number of samples seen so far (``learning_iterations``, including this batch)
and :math:`T` = ``duty_cycle_period``:

.. math::

    p = \min(T, t), \qquad
    d \leftarrow \frac{d\,(p - B) + \sum_{\text{batch}} [y > 0]}{p}.

So the duty cycle is an exact running mean while fewer than :math:`T` samples
were seen and an exponential-style moving average afterwards. (As in the
reference, a batch larger than the period makes :math:`p - B` negative; keep
``duty_cycle_period`` at least the batch size.) Evaluation mode uses
``k_inference`` winners, never updates the duty cycles, and still applies
boosting.

Implementation
--------------
Vectorised, no Python loop over units or samples. On CUDA (and for NaN/inf
inputs or dtypes other than float32/64) the winners come from ``topk`` /
``kthvalue`` and a ``masked_fill``, exactly as in the reference. On CPU the
same winners are computed with float arithmetic only (a 0/1 mask and a
product; a compare-and-count bisection instead of ``topk`` when ``k > n/64``),
which is about twice as fast there; the tests check that both paths pick the
same units and pass the same gradients. Faster still, rows along the last
axis go to a compiled kernel (:mod:`avalanche_sparse.layers._kwta_cpu`), and
:class:`KWinners` lets that kernel also apply the boost and count the
duty-cycle winners, in one pass over each row; it is used whenever it could be
built (``g++``) and the input is finite.
"""
from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor, nn

from . import _kwta_cpu

__all__ = [
    "kwinners",
    "kwinners2d",
    "KWinnersBase",
    "KWinners",
    "KWinners2d",
    "binary_entropy",
    "max_entropy",
]


# ----------------------------------------------------------------------------
# functional form
# ----------------------------------------------------------------------------
def _boost_factor(duty_cycles: Tensor, boost_strength: float, dtype: torch.dtype) -> Tensor:
    """Per-unit ranking factor :math:`e^{-\\beta d}` in ``dtype`` (shared by the
    torch path and the compiled kernel, so both rank by the same numbers)."""
    return torch.exp(duty_cycles.to(dtype) * (-boost_strength))


def _boosted(x: Tensor, duty_cycles: Tensor | None, boost_strength: float) -> Tensor:
    """Ranking scores :math:`x\\,e^{-\\beta d}` (detached); ``x`` itself when
    :math:`\\beta = 0` (no copy, no ``exp``). The ``exp`` is taken on the duty
    cycle vector only, never on the full activation tensor."""
    xd = x.detach()
    if boost_strength > 0.0:
        if duty_cycles is None:
            raise ValueError("duty_cycles is required when boost_strength > 0")
        return xd * _boost_factor(duty_cycles, boost_strength, xd.dtype)
    return xd


def _check_k(k: int, size: int, what: str) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k > size:
        raise ValueError(f"k must be an int in [0, {size}] (the number of {what}), got {k!r}")


# Winner selection.
#
# Reference path (non-CPU devices, other dtypes, or NaN/inf values): the
# threshold is the k-th largest boosted value (``topk``/``kthvalue``), the
# losers ``boosted < threshold`` (or all but the ``topk`` indices for exact k),
# output ``x.masked_fill(losers, 0)`` - literally the reference semantics.
#
# CPU path for finite float32/float64 inputs: the same winners, but as a 0/1
# float ``keep`` tensor and an output ``x * keep`` (autograd's product rule then
# passes the gradient to the winners only), because bool tensors and
# ``masked_fill`` are several times slower than float arithmetic on CPU. When
# ``topk`` would use its slow path (k > n / 64) the threshold comes from a
# per-slice bisection on the value axis built from float compare-and-sum
# passes (see :func:`_bisect_threshold`), about twice as fast as ``topk`` for
# the layer sizes used here. Both paths select exactly the same units (tested);
# the only visible difference is that a negative loser becomes -0.0 instead of
# +0.0.
_BISECT_MIN_NUMEL = 16384
_BISECT_MAX_PASSES = 16
_BISECT_FIRST_CHECK = 9  # first pass after which finished slices are counted
_BISECT_FINISH_FRACTION = 32  # stop once at most 1/32 of the slices are left (exact topk on those)
_use_fast_cpu = True  # switch for tests and benchmarks
_use_native = True  # compiled row kernel (layers/_kwta_cpu.py) inside the fast CPU path


def _kth_largest(b: Tensor, k: int, dim: int) -> Tensor:
    """Exact k-th largest value along ``dim`` (keepdim)."""
    if 2 * k <= b.shape[dim]:  # same value, topk is faster for small k
        return b.topk(k, dim=dim, sorted=False).values.amin(dim=dim, keepdim=True)
    return b.kthvalue(b.shape[dim] - k + 1, dim=dim, keepdim=True).values


def _bisect_threshold(b: Tensor, k: int, dim: int) -> Tensor | None:
    r"""A threshold :math:`t` per slice along ``dim`` (keepdim) with
    :math:`\{b \ge t\} = \{b \ge b_{(k)}\}`, :math:`b_{(k)}` the k-th largest value.

    Bisection on the value axis: the bracket [lo, hi) keeps
    :math:`\#\{b \ge lo\} \ge k` and (after the first cut) :math:`\#\{b \ge hi\} < k`;
    each pass costs one float compare and one row sum. A slice is finished as
    soon as :math:`\#\{b \ge lo\} = k`. The last few slices converge slowly (their
    k-th and (k+1)-th values are very close, or tied), so once at most
    1/``_BISECT_FINISH_FRACTION`` of the slices are left (checked from pass
    ``_BISECT_FIRST_CHECK`` on), or after ``_BISECT_MAX_PASSES`` passes, those
    slices get their exact k-th largest value from ``topk`` on them alone
    (on all slices if more than a quarter are left).
    Needs ``2 <= k < n``; returns ``None`` when ``b`` has NaN/inf values or a
    range too wide for the float arithmetic (|values| near the dtype max).
    """
    n = b.shape[dim]
    lo = b.amin(dim, keepdim=True)
    hi = b.amax(dim, keepdim=True)
    span = hi - lo  # NaN/inf if b has NaN/inf (amin/amax propagate NaN)
    if not bool(torch.isfinite(span).all()):
        return None
    buf = torch.empty(b.shape, dtype=b.dtype)
    kt = torch.tensor(float(k), dtype=b.dtype)
    c_lo = torch.full_like(lo, float(n))
    # bracket [lo, lo + 2h): lo only moves to a cut with >= k values at or
    # above it, so #{b >= lo} = c_lo >= k holds exactly throughout
    h = span.mul_(0.5)
    mid, c, up = torch.empty_like(lo), torch.empty_like(lo), torch.empty_like(lo)
    rows_total = c_lo.numel()
    for p in range(_BISECT_MAX_PASSES):
        torch.add(lo, h, out=mid)
        torch.sum(torch.ge(b, mid, out=buf), dim, keepdim=True, out=c)
        torch.ge(c, kt, out=up)
        lo.addcmul_(up, h)  # + h (exactly mid) where up = 1, + 0 elsewhere
        c_lo.lerp_(c, up)  # lerp with a 0/1 weight selects exactly
        h.mul_(0.5)
        if p >= _BISECT_FIRST_CHECK:
            left = rows_total - int(torch.eq(c_lo, kt).sum())
            if left == 0:
                return lo
            if left * _BISECT_FINISH_FRACTION <= rows_total:
                break
    todo = torch.ne(c_lo, kt)
    if int(todo.sum()) * 4 > todo.numel():
        return torch.where(todo, _kth_largest(b, k, dim), lo)
    thr = lo
    rows = b.movedim(dim, -1).reshape(-1, n)
    idx = todo.movedim(dim, -1).reshape(-1).nonzero().squeeze(1)
    exact = rows.index_select(0, idx).topk(k, dim=1, sorted=False).values.amin(1)
    moved = thr.movedim(dim, -1)
    flat = moved.reshape(-1).clone()
    flat[idx] = exact
    return flat.view(moved.shape).movedim(-1, dim)


def _keep_mask_cpu(boosted: Tensor, k: int, dim: int, break_ties: bool, relu: bool, dtype: torch.dtype) -> Tensor | None:
    """0/1 ``keep`` tensor of ``dtype`` (CPU path), or ``None`` when the
    reference path must be used."""
    if _use_native and dim == boosted.dim() - 1 and boosted.dtype == dtype:
        keep = _kwta_cpu.keep_mask(boosted, k, break_ties, relu)
        if keep is not None:
            return keep
    n = boosted.shape[dim]
    thr = None
    if boosted.numel() >= _BISECT_MIN_NUMEL and 64 * k > n and 2 <= k < n:
        thr = _bisect_threshold(boosted, k, dim)
        if thr is None:  # NaN/inf or extreme values: reference path
            return None
    elif not bool(torch.isfinite(boosted.sum())):  # NaN/inf (or overflow): reference path
        return None
    keep = torch.empty(boosted.shape, dtype=dtype)
    if break_ties:
        if thr is not None:
            torch.ge(boosted, thr, out=keep)
            if not bool((keep.sum(dim, keepdim=True) == k).all()):  # ties at the threshold
                thr = None
        if thr is None:
            idx = boosted.topk(k, dim=dim, sorted=False).indices
            keep.zero_().scatter_(dim, idx, 1.0)
        if relu:
            keep.mul_(torch.gt(boosted, 0, out=torch.empty_like(keep)))
        return keep
    if thr is None:
        thr = _kth_largest(boosted, k, dim)
    if relu:
        thr = thr.clamp(min=0)
    return torch.ge(boosted, thr, out=keep)


def _apply_kwinners(
    x: Tensor, boosted: Tensor, k: int, dim: int, break_ties: bool, relu: bool, inplace: bool
) -> Tensor:
    """Zero all but the winners of ``boosted`` (a view of ``x``'s values,
    possibly reshaped) along ``dim``; returns a tensor shaped like ``x``."""
    if (
        _use_fast_cpu
        and boosted.device.type == "cpu"
        and boosted.dtype in (torch.float32, torch.float64)
    ):
        keep = _keep_mask_cpu(boosted, k, dim, break_ties, relu, x.dtype)
        if keep is not None:
            keep = keep.view(x.shape)
            return x.mul_(keep) if inplace else x * keep
    if break_ties:
        idx = boosted.topk(k, dim=dim, sorted=False).indices
        off = torch.ones_like(boosted, dtype=torch.bool).scatter_(dim, idx, False)
        if relu:
            off |= boosted <= 0
    else:
        thr = _kth_largest(boosted, k, dim)
        if relu:
            thr = thr.clamp(min=0)
        off = boosted < thr
    off = off.view(x.shape)
    return x.masked_fill_(off, 0) if inplace else x.masked_fill(off, 0)


def kwinners(
    x: Tensor,
    duty_cycles: Tensor | None,
    k: int,
    boost_strength: float,
    break_ties: bool = False,
    relu: bool = False,
    inplace: bool = False,
) -> Tensor:
    r"""k-winners-take-all over the last dimension of ``x``.

    Winners are the ``k`` largest values of :math:`x\,e^{-\beta d}` per row (see the
    module docstring); the output keeps the original ``x`` at the winners and 0
    elsewhere, and only winners receive gradient.

    :param x: activations, shape ``(..., n)`` (normally ``(batch, n)``).
    :param duty_cycles: duty cycle per unit, shape ``(n,)``; may be ``None`` when
        ``boost_strength == 0``.
    :param k: number of winners per row, ``0 <= k <= n``; ``k = 0`` gives zeros.
    :param boost_strength: :math:`\beta \ge 0`; 0 disables boosting.
    :param break_ties: ``True``: exactly ``k`` winners (``topk``). ``False``
        (faster, the reference default): every unit whose boosted value is
        ``>=`` the k-th largest wins, so ties can give more than ``k`` winners.
    :param relu: behave as if a ReLU preceded the k-WTA: non-positive values
        never win (the threshold is clamped at 0).
    :param inplace: write the result into ``x``.
    :return: tensor shaped like ``x``.
    """
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension (..., n)")
    _check_k(k, x.shape[-1], "units in the last dimension")
    if boost_strength < 0:
        raise ValueError(f"boost_strength must be >= 0, got {boost_strength}")
    if k == 0:
        return x.zero_() if inplace else torch.zeros_like(x)
    if k == x.shape[-1] and not relu:
        return x if inplace else x.clone()
    boosted = _boosted(x, duty_cycles, float(boost_strength))
    return _apply_kwinners(x, boosted, k, x.dim() - 1, break_ties, relu, inplace)


def kwinners2d(
    x: Tensor,
    duty_cycles: Tensor | None,
    k: int,
    boost_strength: float,
    local: bool = True,
    break_ties: bool = False,
    relu: bool = False,
    inplace: bool = False,
) -> Tensor:
    r"""k-winners-take-all for convolutional maps ``(batch, C, H, W)``.

    ``local=True`` (the functional default, as in the reference): at every
    spatial location the top ``k`` of the ``C`` channels win. ``local=False``:
    the top ``k`` of all ``C*H*W`` values of each sample win. The module
    :class:`KWinners2d` defaults to ``local=False``, also as in the reference.

    :param x: activations ``(batch, C, H, W)``.
    :param duty_cycles: per-channel duty cycles, shape ``(1, C, 1, 1)``; may be
        ``None`` when ``boost_strength == 0``.
    :param k: winners per location (local) or per sample (global).
    :param boost_strength, break_ties, relu, inplace: as in :func:`kwinners`.
    """
    if x.dim() != 4:
        raise ValueError(f"kwinners2d expects a 4-D input (batch, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if local:
        _check_k(k, c, "channels")
    else:
        _check_k(k, c * h * w, "units C*H*W")
    if boost_strength < 0:
        raise ValueError(f"boost_strength must be >= 0, got {boost_strength}")
    if k == 0:
        return x.zero_() if inplace else torch.zeros_like(x)
    if k == (c if local else c * h * w) and not relu:
        return x if inplace else x.clone()
    boosted = _boosted(x, duty_cycles, float(boost_strength))
    if local:
        return _apply_kwinners(x, boosted, k, 1, break_ties, relu, inplace)
    return _apply_kwinners(x, boosted.reshape(b, c * h * w), k, 1, break_ties, relu, inplace)


# ----------------------------------------------------------------------------
# entropy helpers
# ----------------------------------------------------------------------------
def binary_entropy(p: Tensor) -> Tensor:
    r"""Total entropy in bits of independent binary units that are on with
    probability ``p``: :math:`\sum_i -p_i\log_2 p_i - (1-p_i)\log_2(1-p_i)`
    (0 for :math:`p_i \in \{0, 1\}`)."""
    p = p.detach().clamp(0.0, 1.0)
    q = 1.0 - p
    nats = -(torch.special.xlogy(p, p) + torch.special.xlogy(q, q))
    return nats.sum() / math.log(2.0)


def max_entropy(n: int, k: int) -> float:
    r"""Largest total entropy (bits) of ``n`` binary units with ``k`` on on
    average: :math:`n\,H_2(k/n)`."""
    if n <= 0:
        return 0.0
    s = k / n
    if not 0.0 < s < 1.0:
        return 0.0
    return n * (-s * math.log2(s) - (1 - s) * math.log2(1 - s))


# ----------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------
def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class KWinnersBase(nn.Module):
    r"""Shared state and hyper-parameters of :class:`KWinners` and
    :class:`KWinners2d`.

    Buffers (all saved in the ``state_dict``): ``duty_cycle``,
    ``boost_strength`` (0-d float) and ``learning_iterations`` (0-d int64,
    samples seen in training). Python copies of the last two are kept so that
    ``forward`` never reads a device tensor back to the host; they are
    refreshed by ``load_state_dict``.

    :param percent_on: fraction of units that win, in (0, 1].
    :param k_inference_factor: ``> 0``; evaluation uses more winners,
        :math:`k_{inf} \approx k \cdot` factor (capped at the number of units).
    :param boost_strength: :math:`\beta \ge 0`, 0 disables boosting.
    :param boost_strength_factor: in (0, 1]; :meth:`update_boost_strength`
        multiplies :math:`\beta` by it (call once per epoch).
    :param duty_cycle_period: :math:`T \ge 1`, length (in samples) of the duty
        cycle average.
    :param break_ties, relu, inplace: see :func:`kwinners`.
    """

    duty_cycle: Tensor
    boost_strength: Tensor
    learning_iterations: Tensor

    def __init__(
        self,
        percent_on: float,
        k_inference_factor: float,
        boost_strength: float,
        boost_strength_factor: float,
        duty_cycle_period: int,
        break_ties: bool,
        relu: bool,
        inplace: bool,
    ) -> None:
        super().__init__()
        percent_on = _real(percent_on, "percent_on")
        if not 0.0 < percent_on <= 1.0:
            raise ValueError(f"percent_on must be in (0, 1], got {percent_on}")
        k_inference_factor = _real(k_inference_factor, "k_inference_factor")
        if k_inference_factor <= 0.0:
            raise ValueError(f"k_inference_factor must be > 0, got {k_inference_factor}")
        boost_strength = _real(boost_strength, "boost_strength")
        if boost_strength < 0.0:
            raise ValueError(f"boost_strength must be >= 0, got {boost_strength}")
        boost_strength_factor = _real(boost_strength_factor, "boost_strength_factor")
        if not 0.0 < boost_strength_factor <= 1.0:
            raise ValueError(f"boost_strength_factor must be in (0, 1], got {boost_strength_factor}")
        self.duty_cycle_period = _positive_int(duty_cycle_period, "duty_cycle_period")

        self.percent_on = percent_on
        self.percent_on_inference = percent_on * k_inference_factor
        self.k_inference_factor = k_inference_factor
        self.boost_strength_factor = boost_strength_factor
        self.break_ties = bool(break_ties)
        self.relu = bool(relu)
        self.inplace = bool(inplace)
        self.n = 0
        self.k = 0
        self.k_inference = 0

        self.register_buffer("boost_strength", torch.tensor(boost_strength, dtype=torch.float32))
        self.register_buffer("learning_iterations", torch.tensor(0, dtype=torch.int64))
        self._boost = boost_strength
        self._iterations = 0

    # -- state -----------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # nupic.torch keeps learning_iterations out of its state_dict: accept
        # such files (the counter then keeps its current value)
        key = prefix + "learning_iterations"
        if key not in state_dict and prefix + "duty_cycle" in state_dict:
            state_dict[key] = self.learning_iterations.clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._boost = float(self.boost_strength.item())
        self._iterations = int(self.learning_iterations.item())

    @property
    def boost_strength_value(self) -> float:
        """Current boost strength as a Python float."""
        return self._boost

    def update_boost_strength(self) -> None:
        r""":math:`\beta \leftarrow \beta \cdot` ``boost_strength_factor``
        (usually once per epoch)."""
        self._boost *= self.boost_strength_factor
        self.boost_strength.fill_(self._boost)

    def _update_duty_cycle(self, active: Tensor, batch_size: int) -> None:
        """``active``: number of positive outputs per unit in this batch,
        already shaped like ``duty_cycle``."""
        self._iterations += batch_size
        self.learning_iterations.fill_(self._iterations)
        period = min(self.duty_cycle_period, self._iterations)
        with torch.no_grad():
            d = self.duty_cycle
            d.mul_(period - batch_size).add_(active.to(d.dtype)).div_(period)

    # -- metrics ---------------------------------------------------------
    def entropy(self) -> Tensor:
        """Total binary entropy (bits) of the units, from their duty cycles."""
        return binary_entropy(self.duty_cycle)

    def max_entropy(self) -> float:
        """Entropy (bits) if every unit were on with probability
        ``int(n * percent_on) / n``."""
        return max_entropy(self.n, int(self.n * self.percent_on))

    def extra_repr(self) -> str:
        s = (
            f"n={self.n}, percent_on={self.percent_on}, k={self.k}, k_inference={self.k_inference}, "
            f"boost_strength={self._boost}, boost_strength_factor={self.boost_strength_factor}, "
            f"k_inference_factor={self.k_inference_factor}, duty_cycle_period={self.duty_cycle_period}, "
            f"break_ties={self.break_ties}"
        )
        if self.relu:
            s += ", relu=True"
        if self.inplace:
            s += ", inplace=True"
        return s


class KWinners(KWinnersBase):
    r"""k-WTA over the last dimension of ``(batch, n)`` inputs (dense layers).

    :math:`k = \mathrm{round}(n \cdot \text{percent\_on})` winners in training and
    :math:`k_{inf} = \min(n, \lfloor k \cdot \text{k\_inference\_factor} \rfloor)`
    in evaluation (truncated, as in ``nupic.torch``). Inputs with extra leading
    dimensions ``(..., n)`` are accepted; each row counts as one sample for the
    duty cycle. Buffers: ``duty_cycle`` of shape ``(n,)``, plus those of
    :class:`KWinnersBase`.

    :param n: number of units (size of the last input dimension), ``>= 1``.
    :param percent_on: fraction of winners in (0, 1].
    :param k_inference_factor, boost_strength, boost_strength_factor,
        duty_cycle_period, break_ties, relu, inplace: see :class:`KWinnersBase`.
    """

    def __init__(
        self,
        n: int,
        percent_on: float,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
        relu: bool = False,
        inplace: bool = False,
    ) -> None:
        super().__init__(
            percent_on, k_inference_factor, boost_strength, boost_strength_factor,
            duty_cycle_period, break_ties, relu, inplace,
        )
        self.n = _positive_int(n, "n")
        self.k = int(round(self.n * self.percent_on))
        if self.k < 1:
            raise ValueError(
                f"percent_on={percent_on} gives k = round({n} * {percent_on}) = 0 winners; "
                f"percent_on must be >= {0.5 / n:.3g} for n={n}"
            )
        self.k_inference = min(self.n, int(self.k * self.k_inference_factor))
        if self.k_inference < 1:
            raise ValueError(
                f"k_inference_factor={k_inference_factor} gives k_inference = int({self.k} * "
                f"{k_inference_factor}) = 0 winners at evaluation; it must be >= {1 / self.k:.3g}"
            )
        self.register_buffer("duty_cycle", torch.zeros(self.n))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.n:
            raise ValueError(
                f"KWinners(n={self.n}) expects input of shape (batch, {self.n}); got {tuple(x.shape)}"
            )
        k = self.k if self.training else self.k_inference
        if _use_fast_cpu and _use_native and 0 < k < self.n and x.device.type == "cpu":
            # fused CPU kernel: boosting, winners and the duty-cycle count in one pass
            factor = _boost_factor(self.duty_cycle, self._boost, x.dtype) if self._boost > 0.0 else None
            res = _kwta_cpu.winners(x, factor, k, self.break_ties, self.relu, count_active=self.training)
            if res is not None:
                keep, active = res
                keep = keep.view(x.shape)
                y = x.mul_(keep) if self.inplace else x * keep
                if self.training:
                    self._update_duty_cycle(active, keep.numel() // self.n)
                return y
        y = kwinners(x, self.duty_cycle, k, self._boost, self.break_ties, self.relu, self.inplace)
        if self.training:
            flat = y.detach().reshape(-1, self.n)
            # float 0/1 buffer: much faster than a bool tensor on CPU
            active = torch.gt(flat, 0, out=torch.empty(flat.shape, dtype=self.duty_cycle.dtype, device=flat.device))
            self._update_duty_cycle(active.sum(0), flat.shape[0])
        return y


class KWinners2d(KWinnersBase):
    r"""k-WTA for convolutional maps ``(batch, C, H, W)``.

    * ``local=False`` (default, as the reference module): the winners are the
      top :math:`k = \mathrm{round}(C H W \cdot \text{percent\_on})` of all
      ``C*H*W`` values of each sample, and
      :math:`k_{inf} = \mathrm{round}(C H W \cdot \text{percent\_on} \cdot
      \text{k\_inference\_factor})`.
    * ``local=True``: at each location the top
      :math:`k = \mathrm{round}(C \cdot \text{percent\_on})` channels win;
      :math:`k_{inf} = \mathrm{round}(C \cdot \text{percent\_on} \cdot
      \text{k\_inference\_factor})`.

    Note the 2-D rule rounds ``percent_on * factor`` directly, unlike
    :class:`KWinners` which truncates ``k * factor`` (both as in the reference);
    :math:`k_{inf}` is capped at the number of candidates. In global mode ``k``
    depends on ``H*W`` and is derived from the first input (and re-derived if
    the spatial size changes).

    The duty cycle is per channel, shape ``(1, C, 1, 1)``: the count of positive
    outputs of a channel over the batch and all locations, divided by ``H*W``,
    enters the update rule of the module docstring.

    :param channels: number of channels ``C``, ``>= 1``.
    :param percent_on: fraction of winners in (0, 1] (default 0.1).
    :param local: choose winners per location (``True``) or per sample.
    """

    def __init__(
        self,
        channels: int,
        percent_on: float = 0.1,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        local: bool = False,
        break_ties: bool = False,
        relu: bool = False,
        inplace: bool = False,
    ) -> None:
        super().__init__(
            percent_on, k_inference_factor, boost_strength, boost_strength_factor,
            duty_cycle_period, break_ties, relu, inplace,
        )
        self.channels = _positive_int(channels, "channels")
        self.local = bool(local)
        self._spatial = -1
        if self.local:
            self.k, self.k_inference = self._ks(self.channels)
        self.register_buffer("duty_cycle", torch.zeros(1, self.channels, 1, 1))

    def _ks(self, size: int) -> tuple[int, int]:
        k = int(round(size * self.percent_on))
        k_inf = min(size, int(round(size * self.percent_on_inference)))
        what = "channels" if self.local else "units C*H*W"
        if k < 1:
            raise ValueError(
                f"percent_on={self.percent_on} gives k = round({size} * {self.percent_on}) = 0 "
                f"winners over {size} {what}"
            )
        if k_inf < 1:
            raise ValueError(
                f"k_inference_factor={self.k_inference_factor} gives 0 winners at evaluation "
                f"over {size} {what}"
            )
        return k, k_inf

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"KWinners2d(channels={self.channels}) expects input of shape "
                f"(batch, {self.channels}, H, W); got {tuple(x.shape)}"
            )
        b, c, h, w = x.shape
        if h * w != self._spatial:
            self._spatial = h * w
            self.n = c * h * w
            if not self.local:
                self.k, self.k_inference = self._ks(self.n)
        k = self.k if self.training else self.k_inference
        y = kwinners2d(x, self.duty_cycle, k, self._boost, self.local, self.break_ties, self.relu, self.inplace)
        if self.training:
            yd = y.detach()
            active = torch.gt(yd, 0, out=torch.empty(yd.shape, dtype=self.duty_cycle.dtype, device=yd.device))
            self._update_duty_cycle(active.sum(dim=(0, 2, 3), keepdim=True) / float(h * w), b)
        return y

    def entropy(self) -> Tensor:
        """Per-channel entropy scaled to all ``C*H*W`` units (``* n / C``)."""
        return binary_entropy(self.duty_cycle) * (self.n / self.channels)

    def max_entropy(self) -> float:
        if self.n == 0:
            raise RuntimeError("KWinners2d.max_entropy needs the input size: run one forward pass first")
        return super().max_entropy()

    def extra_repr(self) -> str:
        return f"channels={self.channels}, local={self.local}, " + super().extra_repr()
