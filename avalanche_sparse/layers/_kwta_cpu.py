r"""Compiled CPU kernel for k-WTA winner selection (rows along the last axis).

For every row :math:`b` (boosted activity, ``n`` values) the kernel writes a
0/1 ``keep`` row with the winners of :func:`avalanche_sparse.layers.kwinners`:

* ``break_ties=False``: :math:`\{i : b_i \ge t\}` with :math:`t` the k-th largest
  value (clamped at 0 when ``relu``);
* ``break_ties=True``: exactly ``k`` units, the ``k`` largest (ties at the
  threshold resolved by index, lowest first), then, with ``relu``, only those
  with :math:`b_i > 0`.

A row of up to a few thousand values stays in the L1 cache, so the threshold
is found by bisection on the value axis, each pass one vectorised
compare-and-count over the row (about 40 ns for 1000 float32 values with
AVX-512): the bracket :math:`[lo, hi)` keeps
:math:`\#\{b \ge lo\} \ge k > \#\{b \ge hi\}`, and a row is done as soon as
:math:`\#\{b \ge lo\} = k`, because then :math:`\{b \ge lo\}` is exactly the set of
the ``k`` largest values. Rows whose k-th and (k+1)-th values are tied (or too
close for the float grid) get the exact k-th value from ``std::nth_element``
on a copy. Rows are spread over the OpenMP threads (torch's own runtime: the
library links the ``libgomp.so.1`` torch has already loaded).

A row with a NaN or infinite value makes the call return 1 without a usable
result, and the caller takes the reference path, so NaN semantics are those
of ``topk``. The library is built on first use (:mod:`avalanche_sparse._native`);
:func:`load` returns ``None`` when that is impossible.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import torch
from torch import Tensor

from .._native import BASE_FLAGS, LazyLibrary, compile_library

__all__ = ["SOURCE", "load", "load_error", "winners", "keep_mask"]

SOURCE = r"""
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

template <typename T>
static inline int64_t count_ge(const T* __restrict__ b, int64_t n, T t) {
    // 32-bit lanes vectorise as compare + subtract; n < 2^31 per row
    int32_t c = 0;
    for (int64_t i = 0; i < n; ++i) c += (b[i] >= t);
    return c;
}

// 0 ok, 1 a NaN/inf value (keep undefined)
template <typename T>
static int row(const T* __restrict__ b, T* __restrict__ keep, int64_t n, int64_t k,
               int break_ties, int relu, std::vector<T>& scratch) {
    T lo = b[0], hi = b[0];
#pragma omp simd reduction(min : lo) reduction(max : hi)
    for (int64_t i = 0; i < n; ++i) {
        T v = b[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    // the comparisons skip NaNs, so a NaN shows as a value not >= the minimum
    if (!(std::fabs(lo) <= std::numeric_limits<T>::max() && std::fabs(hi) <= std::numeric_limits<T>::max())
        || count_ge(b, n, lo) != n)
        return 1;
    // invariant: count(b >= lo) = c_lo >= k; count(b >= hi) < k, or hi is the max
    T t;
    int64_t c_lo = n;
    const int64_t c_hi = count_ge(b, n, hi);
    if (c_hi >= k) {
        t = hi;
        c_lo = c_hi;
    } else {
        for (int pass = 0; pass < 64 && c_lo != k; ++pass) {
            T mid = lo + (hi - lo) / T(2);
            if (!(mid > lo && mid < hi)) break;  // adjacent floats: tie or near-tie
            int64_t c = count_ge(b, n, mid);
            if (c >= k) { lo = mid; c_lo = c; } else { hi = mid; }
        }
        t = lo;
    }
    if (c_lo != k) {  // exact k-th largest value
        scratch.assign(b, b + n);
        std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<T>());
        t = scratch[k - 1];
        c_lo = count_ge(b, n, t);
    }
    if (!break_ties) {
        if (relu && t < T(0)) t = T(0);
        for (int64_t i = 0; i < n; ++i) keep[i] = b[i] >= t ? T(1) : T(0);
        return 0;
    }
    if (c_lo == k) {
        for (int64_t i = 0; i < n; ++i) keep[i] = b[i] >= t ? T(1) : T(0);
    } else {  // more than k at or above t: all above t, then ties by index
        int64_t room = k;
        for (int64_t i = 0; i < n; ++i) room -= (b[i] > t);
        for (int64_t i = 0; i < n; ++i) {
            T v = b[i];
            bool on = v > t;
            if (!on && v == t && room > 0) { on = true; --room; }
            keep[i] = on ? T(1) : T(0);
        }
    }
    if (relu)
        for (int64_t i = 0; i < n; ++i) keep[i] = b[i] > T(0) ? keep[i] : T(0);
    return 0;
}

// x: m rows of n; f: per-unit factor (boosted = x * f) or null (boosted = x);
// keep: m x n output; active: per-unit count of kept positive x, or null
template <typename T>
static int rows(const T* x, const T* f, T* keep, T* active, int64_t m, int64_t n, int64_t k,
                int break_ties, int relu, int threads) {
    int bad = 0;
    if (active)
        for (int64_t i = 0; i < n; ++i) active[i] = T(0);
#pragma omp parallel num_threads(threads) reduction(| : bad)
    {
        std::vector<T> scratch, boosted(f ? n : 0), counts(active ? n : 0, T(0));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < m; ++r) {
            const T* xr = x + r * n;
            T* kr = keep + r * n;
            const T* b = xr;
            if (f) {
                for (int64_t i = 0; i < n; ++i) boosted[i] = xr[i] * f[i];
                b = boosted.data();
            }
            bad |= row<T>(b, kr, n, k, break_ties, relu, scratch);
            if (active)
                for (int64_t i = 0; i < n; ++i) counts[i] += (xr[i] > T(0)) ? kr[i] : T(0);
        }
        if (active) {
#pragma omp critical
            for (int64_t i = 0; i < n; ++i) active[i] += counts[i];
        }
    }
    return bad;
}

extern "C" {
int kwta_rows_f32(const float* x, const float* f, float* keep, float* active, int64_t m, int64_t n,
                  int64_t k, int bt, int relu, int th) {
    return rows<float>(x, f, keep, active, m, n, k, bt, relu, th);
}
int kwta_rows_f64(const double* x, const double* f, double* keep, double* active, int64_t m, int64_t n,
                  int64_t k, int bt, int relu, int th) {
    return rows<double>(x, f, keep, active, m, n, k, bt, relu, th);
}
}
"""

_FLAGS = (*BASE_FLAGS, "-fopenmp")


def _build() -> ctypes.CDLL:
    lib = compile_library("kwta", SOURCE, _FLAGS)
    vp, i64, ci = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in ("f32", "f64"):
        fn = getattr(lib, f"kwta_rows_{suffix}")
        fn.argtypes = [vp, vp, vp, vp, i64, i64, i64, ci, ci, ci]
        fn.restype = ci
    return lib


_library = LazyLibrary(lambda: _build())


def load() -> Optional[ctypes.CDLL]:
    """The compiled kernel, building it on first call; ``None`` if impossible."""
    return _library.load()


def load_error() -> Optional[str]:
    """Why :func:`load` returned ``None``."""
    return _library.error()


def winners(
    x: Tensor, factor: Optional[Tensor], k: int, break_ties: bool, relu: bool, count_active: bool = False
) -> Optional[tuple[Tensor, Optional[Tensor]]]:
    """0/1 winners of each row (last axis) of ``x * factor`` (``x`` when
    ``factor`` is None), same dtype as ``x``, and with ``count_active`` the
    number of rows in which each unit won with ``x > 0`` (the duty-cycle
    count). ``None`` when the kernel cannot be used: not built, not a
    float32/float64 CPU tensor, or a NaN/inf value.

    :param factor: per-unit boost factor :math:`e^{-\beta d}`, shape ``(n,)``.
    """
    if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu" or x.dim() < 1:
        return None
    lib = load()
    if lib is None:
        return None
    x = x.detach().contiguous()
    n = x.shape[-1]
    m = x.numel() // n if n else 0
    if factor is not None:
        factor = factor.detach().to(x.dtype).contiguous()
        if factor.shape != (n,):
            raise ValueError(f"factor must have shape ({n},), got {tuple(factor.shape)}")
    keep = torch.empty_like(x)
    active = torch.empty(n, dtype=x.dtype) if count_active else None
    if m == 0:
        if active is not None:
            active.zero_()
        return keep, active
    fn = lib.kwta_rows_f32 if x.dtype == torch.float32 else lib.kwta_rows_f64
    threads = max(1, min(torch.get_num_threads(), m))
    bad = fn(x.data_ptr(), None if factor is None else factor.data_ptr(), keep.data_ptr(),
             None if active is None else active.data_ptr(), m, n, int(k), int(break_ties), int(relu), threads)
    if bad:
        return None
    return keep, active


def keep_mask(boosted: Tensor, k: int, break_ties: bool, relu: bool) -> Optional[Tensor]:
    """:func:`winners` of ``boosted`` itself: the 0/1 keep tensor, or ``None``."""
    res = winners(boosted, None, k, break_ties, relu)
    return None if res is None else res[0]


def _reset_for_tests() -> None:
    _library.reset()
