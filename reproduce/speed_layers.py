"""Overhead of the sparse layers: SparseWeights(Linear) + KWinners against
Linear + ReLU, forward + backward on CPU.

Usage::

    python -m reproduce.speed_layers [--batch 128] [--repeats 200] [--threads N]

The function :func:`bench_kwinners` returns one dict per layer size; the
command prints them as a table. Timings are medians over ``repeats``
interleaved runs (dense, sparse, dense, ...) after a warm-up, so slow drifts of
the machine hit both variants alike. The k-WTA layer is in training mode
(duty-cycle update included) with the seed's defaults (boost strength 1,
10 % of units on, 10 % of weights non-zero); each repeat takes the next of 8
random batches. ``KW ref`` times the same layer with the reference
``topk``/``masked_fill`` path forced. ``rezero_weights`` is an extra
step after each optimizer step, timed separately (``rezero_ms``).
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import time
from typing import Sequence

import torch
from torch import nn

from avalanche_sparse.layers import KWinners, SparseWeights

_kw_impl = importlib.import_module("avalanche_sparse.layers.kwinners")

__all__ = ["bench_kwinners", "format_table", "main"]


_clock = time.perf_counter


def _fwd_bwd(model: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> float:
    for p in model.parameters():
        p.grad = None
    t0 = _clock()
    model(x).backward(grad)
    return _clock() - t0


def bench_kwinners(
    sizes: Sequence[tuple[int, int]] = ((784, 1000), (1000, 1000)),
    batch: int = 128,
    repeats: int = 200,
    warmup: int = 20,
    percent_on: float = 0.1,
    sparsity: float = 0.9,
    boost_strength: float = 1.0,
    break_ties: bool = False,
    threads: int | None = None,
    seed: int = 0,
    clock: str = "wall",
) -> list[dict]:
    """Median forward+backward time (ms) of ``Linear -> ReLU`` and of
    ``SparseWeights(Linear) -> KWinners`` for each ``(in, out)`` in ``sizes``.

    :return: one dict per size with keys ``in``, ``out``, ``batch``,
        ``dense_ms``, ``sparse_ms``, ``overhead_pct`` (sparse vs dense),
        ``kwinners_ms`` (the k-WTA layer alone, forward + backward),
        ``kwinners_reference_ms`` (the same with the reference
        ``topk``/``masked_fill`` path forced, for comparison), ``relu_ms``
        (ReLU alone) and ``rezero_ms`` (one ``rezero_weights``).
    :param clock: ``"wall"`` (``time.perf_counter``) or ``"thread"`` (CPU time
        of the calling thread, ``time.thread_time``: insensitive to other
        processes on a loaded machine, but only meaningful with ``threads=1``).
    """
    global _clock
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread', got {clock!r}")
    if clock == "thread" and threads != 1:
        raise ValueError("clock='thread' measures one thread: pass threads=1")
    _clock = time.thread_time if clock == "thread" else time.perf_counter
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        rows = []
        for n_in, n_out in sizes:
            dense = nn.Sequential(nn.Linear(n_in, n_out), nn.ReLU()).train()
            sparse_lin = SparseWeights(nn.Linear(n_in, n_out), sparsity, seed=seed)
            kw = KWinners(n_out, percent_on, boost_strength=boost_strength, break_ties=break_ties)
            sparse = nn.Sequential(sparse_lin, kw).train()
            # a pool of different batches, cycled: with one fixed batch the
            # boosting feedback drives the k-th and (k+1)-th values together,
            # which real data does not do
            pool = 8
            xs = torch.randn(pool, batch, n_in)
            grads = torch.randn(pool, batch, n_out)
            hs = torch.randn(pool, batch, n_out)
            kw_only = kw
            relu_only = nn.ReLU()

            keys = ("dense", "sparse", "kw", "kw_ref", "relu", "rezero")
            timings: dict[str, list[float]] = {k: [] for k in keys}
            for i in range(warmup + repeats):
                x, grad = xs[i % pool], grads[i % pool]
                h = hs[i % pool].clone().requires_grad_()
                td = _fwd_bwd(dense, x, grad)
                ts = _fwd_bwd(sparse, x, grad)
                t0 = _clock()
                kw_only(h).backward(grad)
                tk = _clock() - t0
                h.grad = None
                _kw_impl._use_fast_cpu = False
                try:
                    t0 = _clock()
                    kw_only(h).backward(grad)
                    tkr = _clock() - t0
                finally:
                    _kw_impl._use_fast_cpu = True
                h.grad = None
                t0 = _clock()
                relu_only(h).backward(grad)
                tr = _clock() - t0
                h.grad = None
                t0 = _clock()
                sparse_lin.rezero_weights()
                tz = _clock() - t0
                if i >= warmup:
                    for key, val in zip(keys, (td, ts, tk, tkr, tr, tz)):
                        timings[key].append(val * 1e3)
            med = {k: statistics.median(v) for k, v in timings.items()}
            rows.append(
                {
                    "in": n_in,
                    "out": n_out,
                    "batch": batch,
                    "threads": torch.get_num_threads(),
                    "dense_ms": med["dense"],
                    "sparse_ms": med["sparse"],
                    "overhead_pct": 100.0 * (med["sparse"] / med["dense"] - 1.0),
                    "kwinners_ms": med["kw"],
                    "kwinners_reference_ms": med["kw_ref"],
                    "relu_ms": med["relu"],
                    "rezero_ms": med["rezero"],
                }
            )
        return rows
    finally:
        torch.set_num_threads(old_threads)
        _clock = time.perf_counter


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'layer':>11} {'batch':>5} {'thr':>3} {'Linear+ReLU':>12} {'Sparse+KW':>10} "
        f"{'overhead':>9} {'KW alone':>9} {'KW ref':>9} {'ReLU alone':>10} {'rezero':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['in']:>5}x{r['out']:<5} {r['batch']:>5} {r['threads']:>3} {r['dense_ms']:>9.3f} ms "
            f"{r['sparse_ms']:>7.3f} ms {r['overhead_pct']:>8.1f}% {r['kwinners_ms']:>6.3f} ms "
            f"{r['kwinners_reference_ms']:>6.3f} ms "
            f"{r['relu_ms']:>7.3f} ms {r['rezero_ms']:>4.3f} ms"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--break-ties", action="store_true")
    ap.add_argument("--boost-strength", type=float, default=1.0)
    ap.add_argument("--clock", choices=("wall", "thread"), default="wall",
                    help="wall time, or CPU time of the thread (with --threads 1; robust under load)")
    args = ap.parse_args(argv)
    rows = bench_kwinners(
        batch=args.batch, repeats=args.repeats, warmup=args.warmup, threads=args.threads,
        break_ties=args.break_ties, boost_strength=args.boost_strength, clock=args.clock,
    )
    print(format_table(rows))
    worst = max(r["overhead_pct"] for r in rows)
    print(f"worst overhead: {worst:.1f}% (target <= 15%)")
    return rows


if __name__ == "__main__":
    main()
