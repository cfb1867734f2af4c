"""Time one Adam step whose first moments are partly stuck at subnormal floats,
with and without flushing subnormals to zero (``torch.set_flush_denormal``).

Why: in the ``dendrites_si`` cells (Iyer et al. 2022 network + SI, 20 epochs per
task) 37-55 % of Adam's ``exp_avg`` entries were subnormal after six tasks:
moments of weights that stopped getting gradient decay by ``beta1`` each step
until the smallest subnormals stick (``0.9 * k`` ulp rounds back to ``k``),
and on x86 arithmetic on subnormals is many times slower. The grid therefore
flushes them by default (``reproduce.grid.run_cell``).

Usage::

    python reproduce/subnormal_adam.py --out reproduce/results/subnormal_adam.json
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

__all__ = ["time_adam_step", "main"]


def time_adam_step(n: int, subnormal_fraction: float, flush: bool, *, repeats: int = 5,
                   fused: bool = True, seed: int = 0) -> dict:
    """Median seconds of one Adam step over ``n`` weights with zero gradient,
    ``subnormal_fraction`` of ``exp_avg`` set to a stuck subnormal (1e-44)."""
    if not 0.0 <= subnormal_fraction <= 1.0:
        raise ValueError(f"subnormal_fraction must be in [0, 1], got {subnormal_fraction}")
    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be >= 1, got {n} and {repeats}")
    from reproduce.grid import flush_denormal_on

    was_flushing = flush_denormal_on()
    supported = torch.set_flush_denormal(flush)
    try:
        g = torch.Generator().manual_seed(seed)
        p = torch.nn.Parameter(torch.randn(n, generator=g) * 0.05)
        opt = torch.optim.Adam([p], lr=5e-4, fused=fused)
        p.grad = torch.zeros(n)
        opt.step()
        st = opt.state[p]
        mask = torch.rand(n, generator=g) < subnormal_fraction
        st["exp_avg"].zero_()
        st["exp_avg"][mask] = 1e-44  # stored as a subnormal; flushed to 0 on use when flushing
        st["exp_avg_sq"].fill_(1e-8)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t)
        tiny = torch.finfo(torch.float32).tiny
        left = ((st["exp_avg"] != 0) & (st["exp_avg"].abs() < tiny)).float().mean().item()
    finally:
        torch.set_flush_denormal(was_flushing)  # the caller's mode again
    return {"n": n, "subnormal_fraction": subnormal_fraction, "flush_denormal": flush and supported,
            "median_s": statistics.median(times), "subnormal_fraction_after": round(left, 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=15_680_000, help="weights (default: one dendrites_si segment layer)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.4])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [time_adam_step(args.n, f, flush, repeats=args.repeats)
            for f in args.fractions for flush in (False, True)]
    for r in rows:
        print(r)
    from avalanche_sparse.io import atomic_write_json

    atomic_write_json(args.out, {
        "command": "python reproduce/subnormal_adam.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
        "rows": rows,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
