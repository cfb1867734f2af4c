r"""Fused CPU kernel of the complex-synapse step (one pass over memory).

The unfused step makes ``2 n - 1`` elementwise passes over the parameters and
their beakers. Each element's update, however, only needs that element's
weight, gradient, momentum/moments and beakers :math:`u_2..u_n`, and the
in-order beaker chain (each beaker sees the already-updated previous one and
the not-yet-updated next one) is a short sequential recurrence *per element*.
This kernel therefore loads every value of an element once, runs the whole
update (direction, weight, the chain :math:`u_2 \to u_n`) in registers and
stores once: about ``(2 n + 1)`` x 4 bytes of traffic per float32 element
and step (SGD without momentum), the minimum.

The kernel is a few dozen lines of C++ without any header of torch, compiled
on first use with the system C++ compiler (``g++``, or ``$CXX``; about a
second) and called through :mod:`ctypes` on the tensors' data pointers. The
loop over elements is the same arithmetic, in the same order, as the
per-tensor path of :mod:`avalanche_sparse.optim.complex_synapse`
(interpolations written as ``a + w (b - a)``, as :func:`torch.lerp` for
``w < 1/2``), so results agree with it to rounding (the compiler may
contract a multiply-add into one fused instruction, as torch's vectorised
kernels do). Chains of up to :data:`MAX_HIDDEN` hidden beakers are
specialised at compile time, so the loop over elements vectorises.

If no compiler is found or the compilation fails, :func:`load` returns None
and the optimizers fall back to their unfused path (with one warning).
"""
from __future__ import annotations

import ctypes
from typing import Optional

from .._native import BASE_FLAGS, LazyLibrary, compile_library

__all__ = ["MAX_HIDDEN", "SOURCE", "load", "load_error"]

#: hidden beakers (``n_beakers - 1``) handled by the fused kernel
MAX_HIDDEN = 7

SOURCE = r"""
#include <cmath>
#include <cstdint>

// u <- u + w (v - u): torch.lerp for |w| < 1/2 (the fused path is used only then)
template <typename T> static inline T lerp(T u, T v, T w) { return u + w * (v - u); }

// Hidden chain u_2..u_{M+1} of one element; prev is the updated weight.
// h points at u_2 of this element, consecutive beakers are `stride` apart.
template <typename T, int M>
static inline void chain(T prev, T* __restrict__ h, int64_t i, int64_t stride,
                         const T* __restrict__ a, const T* __restrict__ w) {
    T u[M > 0 ? M : 1];
    for (int j = 0; j < M; ++j) u[j] = h[j * stride + i];
    for (int j = 0; j < M; ++j) {
        T x = (j == M - 1) ? u[j] + (-w[j]) * u[j] : lerp(u[j], u[j + 1 < M ? j + 1 : j], w[j]);
        x = lerp(x, prev, a[j]);
        u[j] = x;
        prev = x;
    }
    for (int j = 0; j < M; ++j) h[j * stride + i] = u[j];
}

// visible coupling: n == 1 decays towards 0, n >= 2 moves towards u_2
template <typename T, int M>
static inline T visible(T p, const T* __restrict__ h, int64_t i, T rv) {
    if (M == 0) return p + (-rv) * p;
    return lerp(p, h[i], rv);
}

// SGD. c = {lr, wd, momentum, 1 - dampening, visible rate, a_2.., w_2..}
// flags: 1 weight decay, 2 momentum, 4 first momentum step, 8 nesterov
template <typename T, int M>
static void sgd(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                T* __restrict__ h, int64_t n, const double* c, int flags) {
    const T lr = (T)c[0], wd = (T)c[1], mom = (T)c[2], damp = (T)c[3], rv = (T)c[4];
    T a[M > 0 ? M : 1], w[M > 0 ? M : 1];
    for (int j = 0; j < M; ++j) { a[j] = (T)c[5 + j]; w[j] = (T)c[5 + M + j]; }
    const bool has_wd = flags & 1, has_buf = flags & 2, first = flags & 4, nesterov = flags & 8;
#define CS_SGD_BODY(HAS_WD, HAS_BUF, FIRST, NESTEROV)                          \
    _Pragma("GCC ivdep")                                                      \
    for (int64_t i = 0; i < n; ++i) {                                         \
        T pi = p[i];                                                          \
        T d = g[i];                                                           \
        if (HAS_WD) d = d + wd * pi;                                          \
        if (HAS_BUF) {                                                        \
            T b = FIRST ? d : buf[i] * mom + damp * d;                        \
            buf[i] = b;                                                       \
            d = NESTEROV ? d + mom * b : b;                                   \
        }                                                                     \
        pi = visible<T, M>(pi, h, i, rv);                                     \
        pi = pi + (-lr) * d;                                                  \
        p[i] = pi;                                                            \
        chain<T, M>(pi, h, i, n, a, w);                                       \
    }
    if (!has_buf) {
        if (has_wd) { CS_SGD_BODY(true, false, false, false) }
        else { CS_SGD_BODY(false, false, false, false) }
    } else if (first) {
        if (nesterov) { CS_SGD_BODY(has_wd, true, true, true) }
        else { CS_SGD_BODY(has_wd, true, true, false) }
    } else {
        if (nesterov) { CS_SGD_BODY(has_wd, true, false, true) }
        else { CS_SGD_BODY(has_wd, true, false, false) }
    }
#undef CS_SGD_BODY
}

// Adam (reference placement of eps). c = {eta, wd, 1 - beta1, beta2, 1 - beta2,
// eps, visible rate, a_2.., w_2..}; flags: 1 weight decay
template <typename T, int M>
static void adam(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m1,
                 T* __restrict__ m2, T* __restrict__ h, int64_t n, const double* c, int flags) {
    const T eta = (T)c[0], wd = (T)c[1], omb1 = (T)c[2], b2 = (T)c[3], omb2 = (T)c[4],
            eps = (T)c[5], rv = (T)c[6];
    T a[M > 0 ? M : 1], w[M > 0 ? M : 1];
    for (int j = 0; j < M; ++j) { a[j] = (T)c[7 + j]; w[j] = (T)c[7 + M + j]; }
#define CS_ADAM_BODY(HAS_WD)                                                  \
    _Pragma("GCC ivdep")                                                      \
    for (int64_t i = 0; i < n; ++i) {                                         \
        T pi = p[i];                                                          \
        T d = g[i];                                                           \
        if (HAS_WD) d = d + wd * pi;                                          \
        T m = lerp(m1[i], d, omb1);                                           \
        T v = v_update(m2[i], d, b2, omb2);                                   \
        m1[i] = m;                                                            \
        m2[i] = v;                                                            \
        T denom = std::sqrt(v) + eps;                                         \
        pi = visible<T, M>(pi, h, i, rv);                                     \
        pi = pi + (-eta) * (m / denom);                                       \
        p[i] = pi;                                                            \
        chain<T, M>(pi, h, i, n, a, w);                                       \
    }
    if (flags & 1) { CS_ADAM_BODY(true) } else { CS_ADAM_BODY(false) }
#undef CS_ADAM_BODY
}

extern "C" {
#define CS_DISPATCH(T, SUFFIX)                                                                  \
int cs_sgd_##SUFFIX(T* p, const T* g, T* buf, T* h, int64_t n, int m, const double* c,        \
                    int flags) {                                                                \
    switch (m) {                                                                                \
        case 0: sgd<T, 0>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 1: sgd<T, 1>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 2: sgd<T, 2>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 3: sgd<T, 3>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 4: sgd<T, 4>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 5: sgd<T, 5>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 6: sgd<T, 6>(p, g, buf, h, n, c, flags); return 0;                                 \
        case 7: sgd<T, 7>(p, g, buf, h, n, c, flags); return 0;                                 \
    }                                                                                           \
    return 1;                                                                                   \
}                                                                                               \
int cs_adam_##SUFFIX(T* p, const T* g, T* m1, T* m2, T* h, int64_t n, int m, const double* c, \
                     int flags) {                                                               \
    switch (m) {                                                                                \
        case 0: adam<T, 0>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 1: adam<T, 1>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 2: adam<T, 2>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 3: adam<T, 3>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 4: adam<T, 4>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 5: adam<T, 5>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 6: adam<T, 6>(p, g, m1, m2, h, n, c, flags); return 0;                             \
        case 7: adam<T, 7>(p, g, m1, m2, h, n, c, flags); return 0;                             \
    }                                                                                           \
    return 1;                                                                                   \
}
CS_DISPATCH(float, f32)
CS_DISPATCH(double, f64)
}
"""

# v <- v * beta2 + (1 - beta2) d d, as mul_ then addcmul_
SOURCE = SOURCE.replace(
    "#include <cstdint>\n",
    "#include <cstdint>\n\ntemplate <typename T> static inline T v_update(T v, T d, T b2, T omb2) "
    "{ return v * b2 + omb2 * (d * d); }\n",
    1,
)

_FLAGS = BASE_FLAGS


def _build() -> ctypes.CDLL:
    lib = compile_library("cs_fused", SOURCE, _FLAGS)
    vp, i64, ci = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in ("f32", "f64"):
        fn = getattr(lib, f"cs_sgd_{suffix}")
        fn.argtypes = [vp, vp, vp, vp, i64, ci, vp, ci]
        fn.restype = ci
        fn = getattr(lib, f"cs_adam_{suffix}")
        fn.argtypes = [vp, vp, vp, vp, vp, i64, ci, vp, ci]
        fn.restype = ci
    return lib


_library = LazyLibrary(lambda: _build())


def load() -> Optional[ctypes.CDLL]:
    """The compiled kernel library, building it on first call; None if the
    build failed (the reason is in :func:`load_error`)."""
    return _library.load()


def load_error() -> Optional[str]:
    """Why :func:`load` returned None (None if it did not, or was not called)."""
    return _library.error()


def _reset_for_tests() -> None:
    _library.reset()
