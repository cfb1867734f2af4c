"""How long a Table 1 cell's training takes on this machine, before running it.

Builds the cell's strategy exactly as ``table1.py`` does (the method's
model, optimizer, batch size and epochs, with its per-benchmark and
strategy overrides), times ``steps`` training steps (forward, cross-entropy,
backward, optimizer step) of that model and optimizer on random inputs of the
benchmark's shape, and multiplies by the number of steps the cell makes::

    steps per cell = sum over experiences of ceil(samples / batch size) x epochs

with the training samples of an experience taken as equal shares of 60,000
(Split MNIST, Split Fashion-MNIST; the real class pairs of Split MNIST differ
by a fraction of a percent), 50,000 (Split CIFAR-10) or 60,000 per task
(Permuted MNIST); a cumulative strategy (``joint``) trains experience ``i``
on ``i`` shares, and a ``train_iterations`` budget replaces the epochs. The
result estimates only the time spent in training steps: data loading,
evaluation and plugin work (EWC/SI penalties, replay) come on top, so a cell
takes longer than this on the same machine and load.

Usage::

    python reproduce/cell_cost.py --methods sparse_cnn dense_cnn naive \\
        --benchmark split_cifar10_class [--preset full] [--threads 2] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

__all__ = ["TRAIN_SAMPLES", "steps_per_cell", "time_steps", "estimate", "main"]

#: training samples per experience-stream (summed over experiences), full data
TRAIN_SAMPLES = {"split_mnist": 60_000, "split_fmnist": 60_000, "split_cifar10": 50_000,
                 "permuted_mnist": 60_000}


def steps_per_cell(benchmark: str, protocol: dict, *, cumulative: bool = False,
                   train_iterations: Optional[int] = None) -> int:
    """Optimizer steps of one cell of ``benchmark`` under ``protocol``
    (``n_experiences``, ``subsample``, ``train_mb_size``, ``train_epochs``)."""
    from reproduce.presets import GRID_BENCHMARKS

    if benchmark not in GRID_BENCHMARKS:
        raise KeyError(f"benchmark: unknown {benchmark!r}; valid: {', '.join(GRID_BENCHMARKS)}")
    n_exp = int(protocol["n_experiences"])
    if train_iterations is not None:
        return int(train_iterations) * n_exp
    builder = GRID_BENCHMARKS[benchmark]["builder"]
    n = TRAIN_SAMPLES[builder]
    if protocol.get("subsample") is not None:
        n = int(n * float(protocol["subsample"]))
    per_exp = n if builder == "permuted_mnist" else -(-n // n_exp)
    batch, epochs = int(protocol["train_mb_size"]), int(protocol["train_epochs"])
    shares = range(1, n_exp + 1) if cumulative else [1] * n_exp
    return sum(-(-(k * per_exp) // batch) for k in shares) * epochs


def _context(method_name: str, benchmark: str, protocol: dict, seed: int):
    """The method, its :class:`MethodContext` and merged hparams, as ``grid._build`` makes them."""
    from avalanche_sparse.strategies import MethodContext, get_method
    from reproduce.grid import benchmark_info, method_hparams

    method = get_method(method_name)
    hp = method_hparams(method, benchmark, protocol)
    info = benchmark_info(benchmark, int(protocol["n_experiences"]))
    return method, MethodContext(benchmark=info, hparams=hp, seed=seed), hp


def time_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, input_shape, n_classes: int,
               batch: int, steps: int, warmup: int = 1, multi_task: bool = False) -> list[float]:
    """Seconds of each of ``steps`` timed training steps (after ``warmup`` untimed ones)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    g = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *input_shape), generator=g)
    y = torch.randint(0, n_classes, (batch,), generator=g)
    t = torch.zeros(batch, dtype=torch.long)
    model.train()
    out = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = model(x, t) if multi_task else model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        optimizer.step()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def estimate(method_name: str, benchmark: str, protocol: dict, *, steps: int = 5,
             seed: int = 0) -> dict:
    """Median step time of the model and optimizer of ``method_name``'s cell on
    ``benchmark``, and the hours its training steps take (module docstring)."""
    from avalanche.models import MultiTaskModule
    from avalanche.training import Cumulative

    from avalanche_sparse.strategies import build_strategy

    method, ctx, hp = _context(method_name, benchmark, protocol, seed)
    torch.manual_seed(seed)
    strategy = build_strategy(method, ctx)
    model, optimizer = strategy.model, strategy.optimizer
    batch, epochs = int(strategy.train_mb_size), int(strategy.train_epochs)
    cumulative = isinstance(strategy, Cumulative)
    iterations = hp.get("train_iterations")
    if getattr(model, "context_mode", None) in ("prototype", "onehot"):
        # what PrototypeContextPlugin does before an experience: a prototype of
        # the task and the training task id (the step's cost does not depend on
        # the prototype's values); the plugins' own per-step work is not timed
        n_in = math.prod(int(d) for d in ctx.benchmark.input_shape)
        if model.context_mode == "prototype":
            model.update_prototype(0, torch.randn(n_in, generator=torch.Generator().manual_seed(seed)), 1)
        model.context_task = 0
    try:
        times = time_steps(model, optimizer, ctx.benchmark.input_shape, ctx.benchmark.n_classes,
                           batch, steps, multi_task=isinstance(model, MultiTaskModule))
    except Exception as exc:  # e.g. a model that needs its plugin's context first
        raise RuntimeError(f"method {method_name!r}: its model cannot be timed outside its "
                           f"strategy ({type(exc).__name__}: {exc})") from exc
    step_s = statistics.median(times)
    n_steps = steps_per_cell(benchmark, {**protocol, "train_mb_size": batch, "train_epochs": epochs},
                             cumulative=cumulative,
                             train_iterations=None if iterations is None else int(iterations))
    return {"method": method_name, "benchmark": benchmark, "batch": batch,
            "train_epochs": epochs, "train_iterations": iterations, "cumulative": cumulative,
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_s_median": step_s, "step_s": times, "steps_per_cell": n_steps,
            "train_step_hours": step_s * n_steps / 3600.0,
            "threads": torch.get_num_threads()}


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--preset", default="full", help="a preset of reproduce/presets.py (default full)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method (default 5)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--out", help="also write the results to this JSON file (atomically)")
    args = p.parse_args(argv)
    from avalanche_sparse.strategies import available_methods, get_method
    from reproduce.presets import PRESETS, get_preset, runs_on

    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.preset not in PRESETS:
        p.error(f"--preset: unknown {args.preset!r}; valid: {', '.join(sorted(PRESETS))}")
    preset = get_preset(args.preset)
    if args.benchmark not in preset["benchmarks"]:
        p.error(f"--benchmark: {args.benchmark!r} is not in preset {args.preset!r}; "
                f"valid: {', '.join(preset['benchmarks'])}")
    unknown = [m for m in args.methods if m not in available_methods()]
    if unknown:
        p.error(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(available_methods())}")
    for m in args.methods:
        allowed = get_method(m).benchmarks
        if not runs_on(allowed, args.benchmark):
            p.error(f"--methods: {m} has no cell on {args.benchmark} (it runs on: {', '.join(allowed)})")
    if args.threads:
        torch.set_num_threads(args.threads)
    protocol = preset["benchmarks"][args.benchmark]
    results = []
    for m in args.methods:
        r = estimate(m, args.benchmark, protocol, steps=args.steps)
        results.append(r)
        print(f"{m:24s} {r['parameters'] / 1e6:8.2f} M params  {r['step_s_median']:.3f} s/step x "
              f"{r['steps_per_cell']} steps = {r['train_step_hours']:.2f} h in training steps "
              f"({r['threads']} threads; data loading, evaluation and plugins not included)", flush=True)
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        atomic_write_json(args.out, {"command": "python reproduce/cell_cost.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "preset": args.preset,
            "torch": torch.__version__, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
