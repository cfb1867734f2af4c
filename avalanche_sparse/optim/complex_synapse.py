r"""Complex-synapse optimizers: SGD and Adam with a chain of hidden "beakers".

Model
-----
Benna & Fusi (2016) describe each synapse as the first of a chain of
:math:`n` communicating vessels ("beakers"). Beaker :math:`k` has capacity
:math:`C_k` and level :math:`u_k`; a tube of width :math:`g_{k,k+1}` joins it
to the next one, and the last one leaks into a reservoir fixed at zero. The
visible weight is the level of the first beaker, :math:`w = u_1`. A new
memory (a gradient step) fills the small first beaker; the liquid then spreads
into ever larger and more weakly coupled beakers, so that a single
displacement decays roughly like a power law of time instead of
exponentially.

With ``n_beakers`` :math:`= n`, shortest timescale :math:`\alpha` and
longest timescale :math:`\beta`, the chain is geometric
(:func:`beaker_chain`):

.. math::

    x = (\beta/\alpha)^{1/(2n-2)}, \qquad
    C_k = x^{k-1}, \qquad
    g_{k,k+1} = \frac{x^{1-k}}{\alpha}, \qquad
    \tau_k = \frac{C_k}{g_{k,k+1}} = \alpha\, x^{2(k-1)},

so :math:`\tau_1 = \alpha` and :math:`\tau_n = \beta`. A single beaker
(:math:`n = 1`) is plain weight decay towards zero, :math:`C_1 = 1`,
:math:`g_{1,2} = 1/\beta`; :math:`n = 0` is the plain optimizer.

Update
------
Every step first computes the direction :math:`G` of the base optimizer and
its step size :math:`\eta` (SGD: :math:`G` the gradient after weight decay and
momentum, exactly as :class:`torch.optim.SGD`, :math:`\eta` the learning
rate; Adam: :math:`G = m_t / (\sqrt{v_t} + \epsilon)` and
:math:`\eta = \mathrm{lr}\,\sqrt{1-\beta_2^t} / (1-\beta_1^t)`). With a time
step :math:`\Delta t` (see *Time step* below), the visible weight moves by

.. math::

    w \leftarrow w - \eta\, G + \frac{\Delta t}{C_1}\, g_{1,2}\,(u_2 - w),

then the hidden beakers are updated in order :math:`k = 2, \dots, n`, each
seeing the *already updated* previous beaker (:math:`u_{n+1} \equiv 0`):

.. math::

    u_k \leftarrow u_k + \frac{\Delta t}{C_k}
    \left[ g_{k-1,k}\,(u_{k-1} - u_k) + g_{k,k+1}\,(u_{k+1} - u_k) \right].

The hidden beakers start at the weights' values at the parameter's first
step (the reference's ``init='same'``), so weights that were never changed
do not decay.

Time step
---------
``timescale="reference"`` (default) uses :math:`\Delta t = \eta`, the
learning rate (SGD) or Adam's bias-corrected step size, exactly as the
reference implementation; published runs reproduce with it.
``timescale="iterations"`` uses :math:`\Delta t = 1` per step.

.. caution::

   With the reference time step, ``alpha`` and ``beta`` are measured in
   units of *learning rate x iterations*, not in iterations (as the
   reference README suggests): a beaker of timescale :math:`\tau` relaxes by
   about :math:`e^{-\eta T/\tau}` in :math:`T` steps. At the published
   setting (Adam, lr 1e-3, ``alpha=500``, ``beta=2500``) a weight displaced
   by 1 relaxes by only about 0.4 % in 2500 iterations of zero gradient, so
   the coupling barely acts. With ``timescale="iterations"`` the same numbers
   are true iteration counts (the beaker of timescale ``alpha`` relaxes by
   :math:`1/e` in about ``alpha`` steps). The two coincide for ``lr = 1``
   (SGD); in general reference mode with ``(alpha, beta)`` equals iterations
   mode with ``(alpha/lr, beta/lr)`` for SGD.

The update is an explicit Euler step; it is monotone only while every rate
:math:`\Delta t\,(g_{k-1,k} + g_{k,k+1})/C_k` stays below 1 (in iterations
mode roughly ``alpha >= 1``; in reference mode ``alpha >= lr``). A warning is
emitted once when a step exceeds that.

Differences from the reference implementation
---------------------------------------------
* Same equations and the same in-order beaker update; the arithmetic is
  arranged as in-place linear interpolations (``lerp``), so results agree
  with the reference to rounding, not bit for bit.
* ``n_beakers=0`` reproduces :class:`torch.optim.SGD` / :class:`torch.optim.Adam`
  bit for bit (the reference's "standard" baseline was ``torch.optim``).
  For ``n_beakers >= 1`` the Adam direction keeps the reference's placement
  of ``eps`` (added to :math:`\sqrt{v_t}` before the bias correction, the
  pre-2019 PyTorch formula); it differs from current ``torch.optim.Adam``
  only through ``eps``, which is effectively scaled by
  :math:`\sqrt{1-\beta_2^t}`.
* SGD momentum, dampening, Nesterov and weight decay (both optimizers) are
  added with ``torch.optim`` semantics; they shape :math:`G` only.
* No ``u_{n+1}`` zero tensor is stored: memory is ``n_beakers - 1`` copies of
  every parameter (one tensor of shape ``(n-1, *p.shape)`` per parameter),
  plus the momentum buffer (SGD with momentum) or the two moments (Adam).
* Non-finite gradients are caught before any state changes (``nonfinite``).

Cost
----
Besides ``n_beakers - 1`` copies of the parameters, the unfused paths make
about ``2 * n_beakers - 1`` extra in-place elementwise passes over the
parameters (one interpolation for the weight, two per hidden beaker; each
beaker must wait for the previous one, so whole-tensor passes cannot be
merged across beakers). The check for non-finite gradients adds one
reduction per gradient and one host synchronisation per step
(``nonfinite="ignore"`` removes both).

With ``n_beakers`` copies of every parameter the step is limited by memory
traffic, not arithmetic. The in-order chain is, however, a short recurrence
*per element*, so on CPU the default path (``fused``) runs the whole step
of an element in registers in one compiled loop
(:mod:`avalanche_sparse.optim._fused_cpu`): each value is read and written
once per step. It agrees with the other paths to rounding; parameters it
cannot take, or a kernel that cannot be built, use the cache-blocked path
(``fused=False``: all passes block by block, ``_BLOCK`` consecutive
elements of every tensor at a time, bit for bit the whole-tensor passes).
Measured under load (``reproduce/speed_optim.py``, 1.8 M parameters, 5
beakers, 1 thread), a training iteration costs 1.23x plain SGD fused, 1.83x
cache-blocked and 1.6x with whole-tensor passes. On GPUs the multi-tensor
(``torch._foreach_*``) path is used.

Bad input
---------
``n_beakers`` must be an int >= 0: 0 is accepted on purpose and is the plain
optimizer (bit for bit), so a comparison's "standard" twin is the same class
with ``n_beakers=0``; negative or non-integer counts, ``alpha <= 0``,
``beta < alpha`` and non-finite ``alpha``/``beta`` raise :class:`ValueError`
naming the argument and the allowed range.

Non-finite gradients
--------------------
``nonfinite="raise"`` (default) checks all gradients of the step first and
raises :class:`FloatingPointError` naming the parameter (flat index over all
groups, group, index in the group, shape) and the step, before any parameter
or state is modified. ``"skip"`` warns and skips the whole step (weights,
beakers, momenta and Adam's step count untouched). ``"ignore"`` performs no
check (one reduction and one host synchronisation per step fewer), so
NaN/Inf propagate into weights and beakers as in the reference.

References
----------
* M. K. Benna and S. Fusi (2016). Computational principles of synaptic memory
  consolidation. *Nature Neuroscience* 19, 1697-1706.
* G. M. van de Ven, complex-synapses (reference PyTorch implementation),
  https://github.com/GMvandeVen/complex-synapses
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections import defaultdict
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = [
    "BeakerChain",
    "beaker_chain",
    "ComplexSynapseSGD",
    "ComplexSynapseAdam",
]

_TIMESCALES = ("reference", "iterations")
_NONFINITE = ("raise", "skip", "ignore")
_STABLE_RATE = 1.0  # explicit Euler is monotone below this per-step rate

Params = Union[Iterable[Tensor], Iterable[dict[str, Any]]]
_Collected = Sequence[tuple[dict[str, Any], list[Tensor], list[Tensor]]]  # (group, params, grads)


# --------------------------------------------------------------------- chain
class BeakerChain(NamedTuple):
    """Constants of a beaker chain (see :func:`beaker_chain`).

    ``capacities[k-1]`` is :math:`C_k`, ``tube_widths[k-1]`` is
    :math:`g_{k,k+1}` (the last entry is the leak to zero) and
    ``timescales[k-1]`` is :math:`C_k / g_{k,k+1}`; all have ``n_beakers``
    entries. ``ratio`` is :math:`x` (1.0 when ``n_beakers < 2``).
    """

    n_beakers: int
    ratio: float
    capacities: tuple[float, ...]
    tube_widths: tuple[float, ...]
    timescales: tuple[float, ...]


def _check_chain_args(n_beakers: Any, alpha: Any, beta: Any) -> tuple[int, float, float]:
    if isinstance(n_beakers, bool) or not isinstance(n_beakers, numbers.Integral):
        raise ValueError(f"n_beakers must be an int >= 0, got {n_beakers!r}")
    if n_beakers < 0:
        raise ValueError(f"n_beakers must be an int >= 0, got {n_beakers}")
    n_beakers = int(n_beakers)
    try:
        alpha_f = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}") from None
    if not (math.isfinite(alpha_f) and alpha_f > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    try:
        beta_f = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a finite number >= alpha, got {beta!r}") from None
    if not (math.isfinite(beta_f) and beta_f >= alpha_f):
        raise ValueError(
            f"beta must be a finite number >= alpha (= {alpha_f:g}), got {beta!r}"
        )
    return n_beakers, alpha_f, beta_f


def beaker_chain(n_beakers: int, alpha: float, beta: float) -> BeakerChain:
    r"""Capacities, tube widths and timescales of a geometric beaker chain.

    :param n_beakers: number of beakers :math:`n \ge 0` (0: no chain).
    :param alpha: shortest timescale :math:`\tau_1 > 0`.
    :param beta: longest timescale :math:`\tau_n \ge \alpha`.
    :returns: a :class:`BeakerChain` with, for :math:`n \ge 2`,
        :math:`x = (\beta/\alpha)^{1/(2n-2)}`, :math:`C_k = x^{k-1}`,
        :math:`g_{k,k+1} = x^{1-k}/\alpha`, :math:`\tau_k = \alpha x^{2(k-1)}`;
        for :math:`n = 1`, :math:`C_1 = 1`, :math:`g_{1,2} = 1/\beta`,
        :math:`\tau_1 = \beta` (weight decay); for :math:`n = 0`, empty tuples.
    :raises ValueError: for ``n_beakers`` not an int >= 0, ``alpha <= 0`` or
        ``beta < alpha``.

    Example: ``beaker_chain(5, 500, 2500)`` has :math:`x \approx 1.2228` and
    timescales of about 500, 748, 1118, 1672 and 2500.
    """
    n, a, b = _check_chain_args(n_beakers, alpha, beta)
    if n == 0:
        return BeakerChain(0, 1.0, (), (), ())
    if n == 1:
        return BeakerChain(1, 1.0, (1.0,), (1.0 / b,), (b,))
    x = (b / a) ** (1.0 / (2 * n - 2))
    caps = tuple(x**k for k in range(n))
    widths = tuple(x ** (-k) / a for k in range(n))
    taus = tuple(c / g for c, g in zip(caps, widths))
    return BeakerChain(n, x, caps, widths, taus)


class _Rates(NamedTuple):
    """Per-step coefficients of the chain for one time step ``dt``."""

    visible: float  # dt * g_{1,2} / C_1
    inflow: tuple[float, ...]  # dt * g_{k-1,k} / C_k, k = 2..n
    outflow: tuple[float, ...]  # dt * g_{k,k+1} / C_k, k = 2..n


def _rates(chain: BeakerChain, dt: float) -> _Rates:
    n = chain.n_beakers
    if n == 0:
        return _Rates(0.0, (), ())
    caps, widths = chain.capacities, chain.tube_widths
    inflow = tuple(dt * widths[k - 1] / caps[k] for k in range(1, n))
    outflow = tuple(dt * widths[k] / caps[k] for k in range(1, n))
    return _Rates(dt * widths[0] / caps[0], inflow, outflow)


# One hidden-beaker update u <- u + a (prev - u) + b (next - u), next = 0 for
# the last beaker, is done in place as two interpolations:
#   u <- u + w (next - u) with w = b / (1 - a), then u <- u + a (prev - u).
# Expanding gives (1 - a)(1 - w) u + (1 - a) w next + a prev, the same update;
# every coefficient enters as a small multiplier of a difference, which keeps
# tiny rates accurate in float32 (a factor 1 - a - b would be rounded to
# float32, an error of up to a few percent of a rate of 1e-6).
# When a is not small (> 1/2, far outside the useful regime) the direct form
# with a temporary is used instead.
_LERP_MAX_INFLOW = 0.5


def _hidden_single(p: Tensor, hidden: Tensor, rates: _Rates) -> None:
    m = hidden.shape[0]
    for j in range(m):
        u = hidden[j]
        prev = p if j == 0 else hidden[j - 1]
        a, b = rates.inflow[j], rates.outflow[j]
        last = j == m - 1
        if a <= _LERP_MAX_INFLOW:
            w = b / (1.0 - a)
            if last:
                u.add_(u, alpha=-w)
            else:
                u.lerp_(hidden[j + 1], w)
            u.lerp_(prev, a)
        else:
            delta = prev.sub(u).mul_(a)
            if last:
                delta.add_(u, alpha=-b)
            else:
                delta.add_(hidden[j + 1].sub(u), alpha=b)
            u.add_(delta)


def _hidden_foreach(params: list[Tensor], hidden: list[Tensor], rates: _Rates) -> None:
    m = hidden[0].shape[0]
    for j in range(m):
        us = [h[j] for h in hidden]
        prevs = params if j == 0 else [h[j - 1] for h in hidden]
        a, b = rates.inflow[j], rates.outflow[j]
        last = j == m - 1
        if a <= _LERP_MAX_INFLOW:
            w = b / (1.0 - a)
            if last:
                torch._foreach_add_(us, us, alpha=-w)
            else:
                torch._foreach_lerp_(us, [h[j + 1] for h in hidden], w)
            torch._foreach_lerp_(us, prevs, a)
        else:
            delta = torch._foreach_sub(prevs, us)
            torch._foreach_mul_(delta, a)
            if last:
                torch._foreach_add_(delta, us, alpha=-b)
            else:
                torch._foreach_add_(delta, torch._foreach_sub([h[j + 1] for h in hidden], us), alpha=b)
            torch._foreach_add_(us, delta)


def _visible_single(p: Tensor, hidden: Optional[Tensor], n: int, rate: float) -> None:
    """Coupling of the visible weight to beaker 2 (or decay for n == 1)."""
    if n == 1:
        p.add_(p, alpha=-rate)
    elif n > 1:
        assert hidden is not None
        p.lerp_(hidden[0], rate)


def _visible_foreach(params: list[Tensor], hidden: list[Tensor], n: int, rate: float) -> None:
    if n == 1:
        torch._foreach_add_(params, params, alpha=-rate)
    elif n > 1:
        torch._foreach_lerp_(params, [h[0] for h in hidden], rate)


#: elements per block of the cache-blocked CPU path (6 float32 blocks of this
#: size, ~0.8 MB, stay in a core's L2 cache while all passes run over them)
_BLOCK = 32768


def _blocks(tensors: Sequence[Optional[Tensor]], hidden: Optional[Tensor], numel: int,
            blocked: bool):
    """Yield ``(views, hidden_view)`` covering the tensors in blocks.

    ``tensors`` (None entries pass through as None) all have ``numel``
    elements; ``hidden`` has shape ``(m, *shape)``. With ``blocked`` and
    contiguous tensors, yields views of ``_BLOCK`` consecutive elements
    (``hidden`` as ``(m, block)``); otherwise yields the whole tensors once.
    Elementwise updates applied block by block are bit for bit those applied
    to the whole tensors, but read each element from memory once per step
    instead of once per pass.
    """
    present = [t for t in tensors if t is not None] + ([hidden] if hidden is not None else [])
    if not blocked or numel <= _BLOCK or not all(t.is_contiguous() for t in present):
        yield list(tensors), hidden
        return
    flat = [None if t is None else t.view(-1) for t in tensors]
    hflat = None if hidden is None else hidden.view(hidden.shape[0], -1)
    for start in range(0, numel, _BLOCK):
        stop = start + _BLOCK
        yield ([None if t is None else t[start:stop] for t in flat],
               None if hflat is None else hflat[:, start:stop])


# --------------------------------------------------------------------- fused
_FUSED_DTYPES = {torch.float32: "f32", torch.float64: "f64"}


def _fused_ok(n: int, rates: _Rates, tensors: Sequence[Optional[Tensor]]) -> bool:
    """Whether the fused kernel computes this parameter's step exactly as
    the per-tensor path: CPU, float32/float64, contiguous, 1 <= n <=
    ``MAX_HIDDEN + 1``, and every interpolation weight below 1/2 (where
    :func:`torch.lerp` uses the form ``a + w (b - a)`` that the kernel uses)."""
    from ._fused_cpu import MAX_HIDDEN

    if not 1 <= n <= MAX_HIDDEN + 1:
        return False
    if not all(0.0 <= w < 0.5 for w in (rates.visible, *rates.inflow)):
        return False
    if not all(0.0 <= b / (1.0 - a) < 0.5 for a, b in zip(rates.inflow, rates.outflow)):
        return False
    first = tensors[0]
    assert first is not None
    return (first.device.type == "cpu" and first.dtype in _FUSED_DTYPES
            and all(t is None or (t.device == first.device and t.dtype == first.dtype
                                  and t.is_contiguous()) for t in tensors))


def _fused_coefficients(rates: _Rates, head: Sequence[float]) -> Any:
    import ctypes

    values = [*head, rates.visible, *rates.inflow,
              *(b / (1.0 - a) for a, b in zip(rates.inflow, rates.outflow))]
    return (ctypes.c_double * len(values))(*values)


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None or t.numel() == 0 else t.data_ptr()


# --------------------------------------------------------------------- base
class _ComplexSynapseBase(Optimizer):
    """Shared machinery: validation, lazy beaker state, the non-finite check,
    foreach/single dispatch, :meth:`beakers` and the step counters."""

    def __init__(self, params: Params, defaults: dict[str, Any], nonfinite: str) -> None:
        if nonfinite not in _NONFINITE:
            raise ValueError(f"nonfinite must be one of {_NONFINITE}, got {nonfinite!r}")
        self.nonfinite: str = nonfinite
        self._n_calls = 0
        self._n_skipped = 0
        self._rate_warned = False
        self._fused_warned = False
        self._validate_group(defaults)
        super().__init__(params, defaults)

    # ---- hyperparameters
    def _validate_group(self, group: dict[str, Any]) -> None:
        _check_chain_args(group["n_beakers"], group["alpha"], group["beta"])
        lr = group["lr"]
        if isinstance(lr, (Tensor, bool)) or not isinstance(lr, numbers.Real) or not lr >= 0:
            raise ValueError(f"lr must be a number >= 0, got {lr!r}")
        if group["timescale"] not in _TIMESCALES:
            raise ValueError(f"timescale must be one of {_TIMESCALES}, got {group['timescale']!r}")
        if not group["weight_decay"] >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']!r}")
        fused = group.get("fused")
        if not (fused is None or isinstance(fused, bool)):
            raise ValueError(f"fused must be True, False or None, got {fused!r}")
        if fused and group.get("foreach"):
            raise ValueError("fused=True and foreach=True cannot both be set")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Validate the group's options, then add it as ``torch.optim`` does."""
        merged = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._validate_group(merged)
        super().add_param_group(param_group)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        self.__dict__.setdefault("nonfinite", "raise")
        self.__dict__.setdefault("_n_calls", 0)
        self.__dict__.setdefault("_n_skipped", 0)
        self.__dict__.setdefault("_rate_warned", False)
        self.__dict__.setdefault("_fused_warned", False)

    @property
    def num_steps(self) -> int:
        """Number of steps taken so far, skipped ones included (a step that
        raised :class:`FloatingPointError` does not count)."""
        return self._n_calls

    @property
    def num_skipped_steps(self) -> int:
        """Number of steps skipped because of non-finite gradients."""
        return self._n_skipped

    def state_dict(self) -> dict[str, Any]:
        """:meth:`torch.optim.Optimizer.state_dict` plus the step counters."""
        sd = super().state_dict()
        sd["complex_synapse"] = {"num_steps": self._n_calls, "num_skipped_steps": self._n_skipped}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; also accepts a ``torch.optim``
        state dict of the base optimizer (missing options take the defaults)."""
        sd = dict(state_dict)
        extra = sd.pop("complex_synapse", None)
        super().load_state_dict(sd)
        for group in self.param_groups:
            self._validate_group(group)
        if extra is not None:
            self._n_calls = int(extra.get("num_steps", 0))
            self._n_skipped = int(extra.get("num_skipped_steps", 0))

    # ---- state
    def _chain(self, group: dict[str, Any]) -> BeakerChain:
        return beaker_chain(group["n_beakers"], group["alpha"], group["beta"])

    @staticmethod
    def _hidden_state(p: Tensor, state: dict[str, Any], n: int) -> Optional[Tensor]:
        """The hidden beakers of ``p`` (created at the first step), or None."""
        if n < 2:
            return None
        hidden = state.get("beakers")
        if hidden is None:
            hidden = p.detach().unsqueeze(0).repeat((n - 1,) + (1,) * p.dim())
            state["beakers"] = hidden
        elif hidden.shape[0] != n - 1 or hidden.shape[1:] != p.shape:
            raise RuntimeError(
                f"stored beakers of shape {tuple(hidden.shape)} do not match n_beakers={n} "
                f"and a parameter of shape {tuple(p.shape)}; n_beakers cannot change after "
                "a parameter's first step"
            )
        return hidden

    def _group_of(self, param: Tensor) -> dict[str, Any]:
        for group in self.param_groups:
            if any(q is param for q in group["params"]):
                return group
        raise ValueError("the tensor is not a parameter of this optimizer")

    @torch.no_grad()
    def beakers(self, param: Tensor) -> Tensor:
        """Levels of all beakers of ``param``, visible weight first.

        :param param: a parameter of this optimizer.
        :returns: a new tensor of shape ``(max(n_beakers, 1), *param.shape)``;
            row 0 is the weight, rows 1.. the hidden beakers :math:`u_2..u_n`.
            Before the parameter's first step the hidden beakers do not exist
            yet; they are reported at the value they will start from, the
            current weight.
        :raises ValueError: if ``param`` is not optimised here.
        """
        group = self._group_of(param)
        n = group["n_beakers"]
        w = param.detach().unsqueeze(0)
        if n < 2:
            return w.clone()
        hidden = self.state[param].get("beakers") if param in self.state else None
        if hidden is None:
            return w.repeat((n,) + (1,) * param.dim())
        return torch.cat([w, hidden.to(param.dtype)], dim=0)

    # ---- step
    def _collect(self) -> list[tuple[dict[str, Any], list[Tensor], list[Tensor]]]:
        out = []
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                params.append(p)
                grads.append(p.grad)
            out.append((group, params, grads))
        return out

    @staticmethod
    def _all_finite(collected: _Collected) -> bool:
        # Cheap filter: a NaN or Inf anywhere makes the tensor's sum non-finite.
        # (A finite tensor whose sum overflows is a false alarm, cleared by the
        # exact, slower isfinite() test below, which only runs on alarm.)
        sums: dict[torch.device, list[Tensor]] = defaultdict(list)
        for _, _, grads in collected:
            for g in grads:
                if g.numel():
                    low = g.dtype in (torch.float16, torch.bfloat16)
                    sums[g.device].append(g.sum(dtype=torch.float32) if low else g.sum())
        if all(bool(torch.isfinite(torch.stack(v)).all()) for v in sums.values()):
            return True
        return all(bool(torch.isfinite(g).all()) for _, _, grads in collected for g in grads)

    def _nonfinite_report(self, step: int) -> str:
        flat = 0
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is not None and not bool(torch.isfinite(g).all()):
                    return (
                        f"non-finite gradient for parameter {flat} (param group {gi}, "
                        f"index {pi}, shape {tuple(p.shape)}) at step {step}"
                    )
                flat += 1
        return f"non-finite gradient at step {step}"

    def _warn_rates(self, rates: _Rates) -> None:
        if self._rate_warned:
            return
        worst = max([rates.visible] + [a + b for a, b in zip(rates.inflow, rates.outflow)])
        if worst > _STABLE_RATE:
            self._rate_warned = True
            warnings.warn(
                f"{type(self).__name__}: a beaker moves by a fraction {worst:.3g} > 1 of its "
                "gap per step, so the explicit update overshoots (it diverges above 2). "
                "Increase alpha (timescale='iterations': alpha >= 1; "
                "timescale='reference': alpha >= the step size).",
                RuntimeWarning,
                stacklevel=3,
            )

    def _mode(self, group: dict[str, Any], params: list[Tensor]) -> str:
        """``"fused"`` (one-pass CPU kernel, the default on CPU), ``"foreach"``,
        ``"single"`` (per tensor) or ``"blocked"`` (per tensor,
        cache-blocked). ``"fused"`` falls back to ``"blocked"`` (with one
        warning) when the kernel cannot be built."""
        fused = group.get("fused")
        devices = {p.device for p in params}
        on_cpu = all(d.type == "cpu" for d in devices)
        if fused or (fused is None and group.get("foreach") is None and on_cpu):
            if self._fused_kernels() is not None:
                return "fused"
            return "blocked"
        if group.get("foreach") is not None:
            return "foreach" if group["foreach"] else "single"
        if on_cpu:
            return "blocked"
        return "foreach" if len(devices) <= 1 else "single"

    def _fused_kernels(self) -> Any:
        """The compiled fused kernels, or None (warning once) if they cannot
        be built."""
        from . import _fused_cpu

        lib = _fused_cpu.load()
        if lib is None and not self._fused_warned:
            self._fused_warned = True
            warnings.warn(
                f"{type(self).__name__}: the fused CPU kernel is unavailable "
                f"({_fused_cpu.load_error()}); using the unfused path (same results, slower)",
                RuntimeWarning,
                stacklevel=4,
            )
        return lib

    @staticmethod
    def _buckets(params: list[Tensor], keys: Sequence[Any]) -> dict[Any, list[int]]:
        out: dict[Any, list[int]] = defaultdict(list)
        for i, (p, k) in enumerate(zip(params, keys)):
            out[(p.device, p.dtype, k)].append(i)
        return out

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one optimisation step (see the module docstring).

        :param closure: optional callable re-evaluating the model and
            returning the loss (run with gradients enabled).
        :returns: the closure's loss, or None.
        :raises FloatingPointError: with ``nonfinite="raise"``, when a
            gradient holds NaN or Inf; nothing has been modified then.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        collected = self._collect()
        if self.nonfinite != "ignore" and any(grads for _, _, grads in collected):
            if not self._all_finite(collected):
                msg = self._nonfinite_report(self._n_calls + 1)
                if self.nonfinite == "raise":
                    raise FloatingPointError(
                        msg + "; no parameter or optimizer state was modified "
                        "(nonfinite='skip' skips such steps instead)"
                    )
                self._n_calls += 1
                self._n_skipped += 1
                warnings.warn(
                    msg + "; the step was skipped (weights and beakers unchanged)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return loss
        self._n_calls += 1
        for group, params, grads in collected:
            if params:
                self._update_group(group, params, grads, self._mode(group, params))
        return loss

    def _update_group(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], mode: str
    ) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------- SGD
class ComplexSynapseSGD(_ComplexSynapseBase):
    r"""SGD whose weights are complex synapses (Benna & Fusi, 2016).

    The direction :math:`G` is that of :class:`torch.optim.SGD` (gradient plus
    ``weight_decay * w``, then momentum / dampening / Nesterov), the step size
    :math:`\eta` is ``lr``, and the weight is coupled to a chain of hidden
    beakers as described in :mod:`avalanche_sparse.optim.complex_synapse`:

    .. math::

        w \leftarrow w - \mathrm{lr}\, G + \Delta t\, g_{1,2}\,(u_2 - w), \qquad
        u_k \leftarrow u_k + \frac{\Delta t}{C_k}\big[g_{k-1,k}(u_{k-1}-u_k)
        + g_{k,k+1}(u_{k+1}-u_k)\big],

    with :math:`\Delta t` = ``lr`` (``timescale="reference"``) or 1
    (``"iterations"``). ``n_beakers=0`` is exactly :class:`torch.optim.SGD`;
    ``n_beakers=1`` is SGD with decay towards zero at rate :math:`\Delta t/\beta`.

    :param params: parameters or parameter-group dicts. Every option below
        except ``nonfinite`` may be set per group.
    :param lr: learning rate (>= 0).
    :param momentum: momentum factor (>= 0).
    :param dampening: dampening for momentum.
    :param weight_decay: L2 penalty added to the gradient (>= 0).
    :param nesterov: Nesterov momentum (needs momentum > 0, dampening 0).
    :param n_beakers: beakers per synapse (int >= 0). Default 5, the
        reference's published setting.
    :param alpha: shortest timescale, of beaker 1 (> 0). Default 500.
    :param beta: longest timescale, of beaker ``n`` (>= alpha). Default 2500.
    :param timescale: ``"reference"`` (:math:`\Delta t` = lr, timescales in
        lr x iterations, as the reference) or ``"iterations"``
        (:math:`\Delta t = 1`).
    :param nonfinite: ``"raise"``, ``"skip"`` or ``"ignore"`` (see the module
        docstring).
    :param foreach: True: the multi-tensor (``torch._foreach_*``) path;
        False: a per-tensor loop; None (default): see ``fused``; on CPU
        with ``fused=False`` the per-tensor, cache-blocked path (see *Cost*
        in the module docstring), elsewhere the multi-tensor path when the
        group's parameters share one device. These three give bit-identical
        results.
    :param fused: True: the one-pass CPU kernel (see *Cost*); None
        (default): the same on CPU unless ``foreach`` is set; False: never.
        It agrees with the other paths to rounding; parameters it cannot
        take (not float32/float64 on CPU, non-contiguous, ``n_beakers`` 0
        or > 8, interpolation weights >= 1/2) and a kernel that cannot be
        compiled (one warning) fall back to the cache-blocked path.

    State per parameter (created at its first step): ``"beakers"``, a tensor
    of shape ``(n_beakers - 1, *p.shape)`` holding :math:`u_2..u_n` (only
    when ``n_beakers >= 2``), and ``"momentum_buffer"`` when momentum != 0.

    Reference: M. K. Benna and S. Fusi, "Computational principles of synaptic
    memory consolidation", Nature Neuroscience 19 (2016); reference code
    https://github.com/GMvandeVen/complex-synapses.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        n_beakers: int = 5,
        alpha: float = 500.0,
        beta: float = 2500.0,
        timescale: str = "reference",
        nonfinite: str = "raise",
        foreach: Optional[bool] = None,
        fused: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            timescale=timescale,
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"momentum must be >= 0, got {group['momentum']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov requires momentum > 0 and dampening == 0")

    def _update_group(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], mode: str
    ) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, n = group["weight_decay"], group["nesterov"], group["n_beakers"]
        chain = self._chain(group)
        rates = _rates(chain, lr if group["timescale"] == "reference" else 1.0)
        if n > 0:
            self._warn_rates(rates)
        states = [self.state[p] for p in params]
        hidden = [self._hidden_state(p, s, n) for p, s in zip(params, states)]

        if mode != "foreach":
            lib = self._fused_kernels() if mode == "fused" else None
            for p, g, s, h in zip(params, grads, states, hidden):
                buf = None
                first = False
                if momentum != 0:
                    buf = s.get("momentum_buffer")
                    if buf is None:  # torch.optim.SGD: the first buffer is the direction
                        buf = torch.empty_like(p, memory_format=torch.preserve_format)
                        s["momentum_buffer"] = buf
                        first = True
                if lib is not None and _fused_ok(n, rates, (p, g, buf, h)):
                    flags = (wd != 0) | (buf is not None) << 1 | first << 2 | bool(nesterov) << 3
                    coef = _fused_coefficients(rates, (lr, wd, momentum, 1 - dampening))
                    kernel = getattr(lib, "cs_sgd_" + _FUSED_DTYPES[p.dtype])
                    if kernel(_ptr(p), _ptr(g), _ptr(buf), _ptr(h), p.numel(), n - 1, coef, flags):
                        raise RuntimeError("fused kernel rejected its arguments")  # pragma: no cover
                    continue
                for (pb, gb, bb), hb in _blocks((p, g, buf), h, p.numel(), mode != "single"):
                    d = gb
                    if wd != 0:
                        d = d.add(pb, alpha=wd)
                    if bb is not None:
                        if first:
                            bb.copy_(d)
                        else:
                            bb.mul_(momentum).add_(d, alpha=1 - dampening)
                        d = d.add(bb, alpha=momentum) if nesterov else bb
                    _visible_single(pb, hb, n, rates.visible)
                    pb.add_(d, alpha=-lr)
                    if hb is not None:
                        _hidden_single(pb, hb, rates)
            return

        for idx in self._buckets(params, [None] * len(params)).values():
            ps = [params[i] for i in idx]
            ds = [grads[i] for i in idx]
            if wd != 0:
                ds = torch._foreach_add(ds, ps, alpha=wd)
            if momentum != 0:
                bufs = [states[i].get("momentum_buffer") for i in idx]
                if all(b is not None for b in bufs):
                    torch._foreach_mul_(bufs, momentum)
                    torch._foreach_add_(bufs, ds, alpha=1 - dampening)
                else:
                    for k, i in enumerate(idx):
                        if bufs[k] is None:
                            bufs[k] = ds[k].detach().clone()
                            states[i]["momentum_buffer"] = bufs[k]
                        else:
                            bufs[k].mul_(momentum).add_(ds[k], alpha=1 - dampening)
                if nesterov:
                    if wd == 0:  # do not write into p.grad
                        ds = torch._foreach_add(ds, bufs, alpha=momentum)
                    else:
                        torch._foreach_add_(ds, bufs, alpha=momentum)
                else:
                    ds = bufs
            hs = [hidden[i] for i in idx] if n > 1 else []
            _visible_foreach(ps, hs, n, rates.visible)
            torch._foreach_add_(ps, ds, alpha=-lr)
            if n > 1:
                _hidden_foreach(ps, hs, rates)


# --------------------------------------------------------------------- Adam
class ComplexSynapseAdam(_ComplexSynapseBase):
    r"""Adam whose weights are complex synapses (Benna & Fusi, 2016).

    With Adam's moments :math:`m_t, v_t` (``weight_decay`` adds an L2 term
    to the gradient, as :class:`torch.optim.Adam`), the direction is
    :math:`G = m_t/(\sqrt{v_t}+\epsilon)` and the step size
    :math:`\eta_t = \mathrm{lr}\sqrt{1-\beta_2^t}/(1-\beta_1^t)`; the weight
    and the hidden beakers then follow

    .. math::

        w \leftarrow w - \eta_t G + \Delta t\, g_{1,2}\,(u_2 - w), \qquad
        u_k \leftarrow u_k + \frac{\Delta t}{C_k}\big[g_{k-1,k}(u_{k-1}-u_k)
        + g_{k,k+1}(u_{k+1}-u_k)\big],

    with :math:`\Delta t = \eta_t` (``timescale="reference"``, as the
    reference code) or 1 (``"iterations"``). ``n_beakers=0`` is exactly
    :class:`torch.optim.Adam` (including its placement of ``eps``); see the
    module docstring for the small ``eps`` difference when ``n_beakers >= 1``.

    :param params: parameters or parameter-group dicts. Every option below
        except ``nonfinite`` may be set per group.
    :param lr: learning rate (>= 0).
    :param betas: coefficients of the running averages, each in [0, 1).
    :param eps: term added to the denominator (>= 0).
    :param weight_decay: L2 penalty added to the gradient (>= 0).
    :param n_beakers: beakers per synapse (int >= 0). Default 5.
    :param alpha: shortest timescale (> 0). Default 500.
    :param beta: longest timescale (>= alpha). Default 2500.
    :param timescale: ``"reference"`` or ``"iterations"``.
    :param nonfinite: ``"raise"``, ``"skip"`` or ``"ignore"``.
    :param foreach: multi-tensor path (True), per-tensor loop (False) or
        None: see ``fused``; cache-blocked on CPU with ``fused=False``,
        multi-tensor on one other device.
    :param fused: one-pass CPU kernel (True; None, the default, on CPU
        unless ``foreach`` is set) or never (False); as for
        :class:`ComplexSynapseSGD`, with ``betas[0] <= 1/2`` also falling
        back.

    State per parameter: ``"step"`` (a float32 CPU scalar tensor, as
    ``torch.optim.Adam``), ``"exp_avg"``, ``"exp_avg_sq"`` and, when
    ``n_beakers >= 2``, ``"beakers"`` of shape ``(n_beakers - 1, *p.shape)``.

    Reference: M. K. Benna and S. Fusi, "Computational principles of synaptic
    memory consolidation", Nature Neuroscience 19 (2016); reference code
    https://github.com/GMvandeVen/complex-synapses.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        n_beakers: int = 5,
        alpha: float = 500.0,
        beta: float = 2500.0,
        timescale: str = "reference",
        nonfinite: str = "raise",
        foreach: Optional[bool] = None,
        fused: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            timescale=timescale,
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults, nonfinite)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        if not group["eps"] >= 0:
            raise ValueError(f"eps must be >= 0, got {group['eps']!r}")
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")

    def _update_group(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], mode: str
    ) -> None:
        lr, eps, wd, n = group["lr"], group["eps"], group["weight_decay"], group["n_beakers"]
        beta1, beta2 = group["betas"]
        reference = group["timescale"] == "reference"
        chain = self._chain(group)
        states = [self.state[p] for p in params]
        for p, s in zip(params, states):
            if "step" not in s:
                s["step"] = torch.tensor(0.0, dtype=torch.float32)
                s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        hidden = [self._hidden_state(p, s, n) for p, s in zip(params, states)]
        for s in states:
            s["step"] += 1
        steps = [float(s["step"]) for s in states]

        def constants(step: float) -> tuple[float, float, float, _Rates]:
            bc1 = 1 - beta1**step
            bc2 = 1 - beta2**step
            eta = lr * math.sqrt(bc2) / bc1  # the reference's adjusted lr
            rates = _rates(chain, eta if reference else 1.0)
            if n > 0:
                self._warn_rates(rates)
            return bc1, bc2, eta, rates

        if mode != "foreach":
            lib = self._fused_kernels() if mode == "fused" else None
            for p, g, s, h, step in zip(params, grads, states, hidden, steps):
                bc1, bc2, eta, rates = constants(step)
                m, v = s["exp_avg"], s["exp_avg_sq"]
                if (lib is not None and 1 - beta1 < 0.5
                        and _fused_ok(n, rates, (p, g, m, v, h))):
                    coef = _fused_coefficients(rates, (eta, wd, 1 - beta1, beta2, 1 - beta2, eps))
                    kernel = getattr(lib, "cs_adam_" + _FUSED_DTYPES[p.dtype])
                    if kernel(_ptr(p), _ptr(g), _ptr(m), _ptr(v), _ptr(h), p.numel(), n - 1, coef,
                              int(wd != 0)):
                        raise RuntimeError("fused kernel rejected its arguments")  # pragma: no cover
                    continue
                blocks = _blocks((p, g, m, v), h, p.numel(), mode != "single")
                for (pb, gb, m, v), hb in blocks:
                    d = gb.add(pb, alpha=wd) if wd != 0 else gb
                    m.lerp_(d, 1 - beta1)
                    v.mul_(beta2).addcmul_(d, d, value=1 - beta2)
                    if n == 0:
                        denom = (v.sqrt() / bc2**0.5).add_(eps)
                        pb.addcdiv_(m, denom, value=-(lr / bc1))
                        continue
                    denom = v.sqrt().add_(eps)
                    _visible_single(pb, hb, n, rates.visible)
                    pb.addcdiv_(m, denom, value=-eta)
                    if hb is not None:
                        _hidden_single(pb, hb, rates)
            return

        for (_, _, step), idx in self._buckets(params, steps).items():
            ps = [params[i] for i in idx]
            ds = [grads[i] for i in idx]
            ms = [states[i]["exp_avg"] for i in idx]
            vs = [states[i]["exp_avg_sq"] for i in idx]
            if wd != 0:
                ds = torch._foreach_add(ds, ps, alpha=wd)
            torch._foreach_lerp_(ms, ds, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, ds, ds, 1 - beta2)
            del ds
            bc1, bc2, eta, rates = constants(step)
            denom = torch._foreach_sqrt(vs)
            if n == 0:
                torch._foreach_div_(denom, bc2**0.5)
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, ms, denom, -(lr / bc1))
                continue
            torch._foreach_add_(denom, eps)
            hs = [hidden[i] for i in idx] if n > 1 else []
            _visible_foreach(ps, hs, n, rates.visible)
            torch._foreach_addcdiv_(ps, ms, denom, -eta)
            if n > 1:
                _hidden_foreach(ps, hs, rates)
