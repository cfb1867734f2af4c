"""How long a Table 1 cell's training takes on this machine, before running it.

Times ``steps`` training steps (forward, cross-entropy, backward, optimizer
step) of a method's own model and optimizer at a preset's protocol, on random
inputs of the benchmark's shape and the protocol's batch size, and multiplies
by the number of steps the cell makes::

    steps per cell = training samples x epochs per experience / batch size

(training samples summed over the experiences: 60,000 for Split MNIST and
Split Fashion-MNIST, 50,000 for Split CIFAR-10, ``n_experiences`` x 60,000 for
Permuted MNIST). It estimates that cell's ``train_time_s`` under the same
load: it leaves out data loading, evaluation and plugin work (EWC/SI
penalties, replay), so on the same machine a cell usually takes longer, and a
cumulative (``joint``) strategy trains on more samples.

Usage::

    python reproduce/cell_cost.py --methods sparse_cnn dense_cnn naive \\
        --benchmark split_cifar10_class [--preset full] [--threads 2] [--out FILE.json]
"""
from __future__ import annotations

import argparse
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


def steps_per_cell(benchmark: str, protocol: dict) -> int:
    """Optimizer steps of one cell of ``benchmark`` under ``protocol`` (non-cumulative)."""
    from reproduce.presets import GRID_BENCHMARKS

    if benchmark not in GRID_BENCHMARKS:
        raise KeyError(f"benchmark: unknown {benchmark!r}; valid: {', '.join(GRID_BENCHMARKS)}")
    builder = GRID_BENCHMARKS[benchmark]["builder"]
    n = TRAIN_SAMPLES[builder]
    if protocol.get("subsample") is not None:
        n = int(n * float(protocol["subsample"]))
    if builder == "permuted_mnist":
        n *= int(protocol["n_experiences"])
    per_exp = -(-n // int(protocol["n_experiences"]))           # samples per experience
    batches = -(-per_exp // int(protocol["train_mb_size"]))      # last batch may be short
    return batches * int(protocol["train_epochs"]) * int(protocol["n_experiences"])


def _context(method_name: str, benchmark: str, protocol: dict, seed: int):
    from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
    from avalanche_sparse.strategies import MethodContext, get_method, resolve_hparams
    from reproduce.presets import GRID_BENCHMARKS, benchmark_twin

    method = get_method(method_name)
    spec = GRID_BENCHMARKS[benchmark]
    hp = resolve_hparams(method, benchmark_twin(benchmark, method.hparams_by_benchmark), protocol)
    info = BenchmarkInfo(name=benchmark, input_shape=tuple(spec["input_shape"]),
                         n_classes=int(spec["n_classes"]), n_experiences=int(protocol["n_experiences"]),
                         scenario=spec["scenario"], label=spec["label"])
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
    """Median step time of ``method_name``'s model and optimizer, and the
    cell's extrapolated training hours (see the module docstring)."""
    from avalanche.models import MultiTaskModule

    method, ctx, hp = _context(method_name, benchmark, protocol, seed)
    torch.manual_seed(seed)
    model = method.model(ctx)
    optimizer = method.optimizer(model, ctx)
    batch = int(hp["train_mb_size"])
    times = time_steps(model, optimizer, ctx.benchmark.input_shape, ctx.benchmark.n_classes,
                       batch, steps, multi_task=isinstance(model, MultiTaskModule))
    step_s = statistics.median(times)
    n_steps = steps_per_cell(benchmark, {**protocol, **{k: hp[k] for k in
                                                        ("train_mb_size", "train_epochs") if k in hp}})
    return {"method": method_name, "benchmark": benchmark, "batch": batch,
            "train_epochs": int(hp["train_epochs"]),
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_s_median": step_s, "step_s": times, "steps_per_cell": n_steps,
            "train_hours_estimate": step_s * n_steps / 3600.0,
            "threads": torch.get_num_threads()}


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--preset", default="full")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method (default 5)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--out", help="also write the results to this JSON file (atomically)")
    args = p.parse_args(argv)
    import avalanche_sparse.strategies  # noqa: F401  (registers the methods)
    from reproduce.presets import get_preset

    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    preset = get_preset(args.preset)
    if args.benchmark not in preset["benchmarks"]:
        p.error(f"--benchmark: {args.benchmark!r} is not in preset {args.preset!r}; "
                f"valid: {', '.join(preset['benchmarks'])}")
    if args.threads:
        torch.set_num_threads(args.threads)
    protocol = preset["benchmarks"][args.benchmark]
    results = []
    for m in args.methods:
        r = estimate(m, args.benchmark, protocol, steps=args.steps)
        results.append(r)
        print(f"{m:24s} {r['parameters'] / 1e6:8.2f} M params  {r['step_s_median']:.3f} s/step x "
              f"{r['steps_per_cell']} steps = {r['train_hours_estimate']:.2f} h of training "
              f"({r['threads']} threads)", flush=True)
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        atomic_write_json(args.out, {"command": "python reproduce/cell_cost.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "preset": args.preset,
            "torch": torch.__version__, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
