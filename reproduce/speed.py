"""Speed of our scenarios against plain Avalanche and a bare torch loop.

Usage::

    python reproduce/speed.py [--epochs 1] [--repeats 3] [--root DIR]
                              [--out reproduce/results/speed.json]

One run, the same model (MLP 784-1000-1000-10, SGD, batch 128) and the same
Permuted MNIST data (one experience, 60k training images):

1. ``bare``: a torch loop over pre-permuted in-memory tensors
   (``DataLoader(TensorDataset)``, shuffled);
2. ``ours``: Avalanche ``Naive`` on :func:`avalanche_sparse.benchmarks.permuted_mnist`
   with :class:`~avalanche_sparse.strategies.FastTensorLoaderPlugin` (what the
   Table 1 grid runs);
3. ``ours_plain``: the same without the plugin (Avalanche's per-sample fetch);
4. ``stock``: Avalanche ``Naive`` on the stock ``PermutedMNIST`` (per-sample
   PIL/tensor transforms); measured in the first round only (it is ~20x slower).

Each round also times the data path alone: one epoch of minibatches drawn
from each path's loader (``DataLoader(TensorDataset)``, and the
task-balanced loader ``Naive`` makes, batched or not), with no model.

The paths are interleaved, round after round (``--repeats``), so a machine
busy with other work disturbs them alike. Prints and stores every epoch time,
the median per path, and the ratios to the bare loop (median over rounds of
the same-round ratio); writes them as JSON (atomically) when ``--out`` is given.

Other sections (``--section``): ``layers`` (sparse layers: forward + backward
of ``SparseWeights(Linear) -> KWinners`` against ``Linear -> ReLU`` at
784x1000 and 1000x1000, batch 128, interleaved, ratio sparse / dense, target
<= 1.15; :mod:`reproduce.speed_layers`), ``dendrites`` (:mod:`reproduce.speed_dendrites`).
``data`` (default) is the comparison above.

``--section optim`` (or ``--complex-synapse``): :mod:`reproduce.speed_optim`,
optimizer-step time, training-iteration time and memory of ComplexSynapseSGD
with 5 beakers against torch SGD on a 1.8 M-parameter MLP; its own options
such as ``--block`` pass through.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["mlp", "bare_epoch", "naive_epoch", "loader_epoch", "avalanche_loader", "layers_section", "main"]

BATCH = 128


def mlp() -> nn.Module:
    """MLP 784-1000-1000-10 with ReLU."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000),
                         nn.ReLU(), nn.Linear(1000, 10))


def bare_epoch(x: torch.Tensor, y: torch.Tensor, epochs: int = 1) -> float:
    """Seconds per epoch of a plain torch training loop."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    t = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return (time.perf_counter() - t) / epochs


def naive_epoch(experience, epochs: int = 1, plugins=None) -> float:
    """Seconds per epoch of Avalanche ``Naive`` training on one experience."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    model = mlp()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                     train_mb_size=BATCH, train_epochs=epochs, eval_mb_size=1024,
                     plugins=list(plugins or []), evaluator=EvaluationPlugin(loggers=[]))
    t = time.perf_counter()
    strategy.train(experience)
    return (time.perf_counter() - t) / epochs


def loader_epoch(loader) -> float:
    """Seconds to draw one epoch of minibatches from ``loader``, no model:
    the data path's own cost."""
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def avalanche_loader(experience, fast: bool):
    """The training loader ``Naive`` makes for ``experience`` (task-balanced,
    shuffled, batch 128), batched by the fast-loader plugin when ``fast``."""
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    from avalanche_sparse.strategies.fast_loader import batched_loader

    loader = TaskBalancedDataLoader(experience.dataset.train(), batch_size=BATCH,
                                    oversample_small_groups=True, shuffle=True)
    if fast:
        loader, why = batched_loader(loader)
        if loader is None:
            raise RuntimeError(f"fast loader refused: {why}")
    return loader


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs per measurement (>= 1)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds (>= 1; default 3, the optim section its own 30)")
    p.add_argument("--root", help="data root (default: $AVALANCHE_SPARSE_DATA or ~/.avalanche/data)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--skip-stock", action="store_true", help="do not measure the stock generator")
    p.add_argument("--section", choices=("data", "layers", "dendrites", "optim"), default="data",
                   help="data: bare / ours / stock epochs (default); layers: sparse-layer overhead; "
                        "dendrites: DendriticMLP step times; optim: ComplexSynapseSGD vs SGD")
    p.add_argument("--complex-synapse", action="store_true", help="same as --section optim")
    p.add_argument("--layer-repeats", type=int, default=200, help="repeats of the layer benchmark (>= 1)")
    p.add_argument("--note", default="", help="free text stored with the figures (e.g. machine load)")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="keep freed memory mapped, as table1.py cells do (avalanche_sparse.memory)")
    args, rest = p.parse_known_args(argv)
    if args.keep_freed_memory:
        from avalanche_sparse.memory import keep_freed_memory

        keep_freed_memory()
    if args.complex_synapse or args.section == "optim":
        # optimizer step / iteration / memory, ComplexSynapseSGD vs torch SGD
        from reproduce.speed_optim import main as optim_main

        extra = [] if args.repeats is None else ["--repeats", str(args.repeats)]
        return optim_main(rest + extra + (["--out", args.out] if args.out else []))
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.repeats is None:
        args.repeats = 3
    if args.epochs < 1:
        raise SystemExit(f"error: --epochs must be >= 1, got {args.epochs}")
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats must be >= 1, got {args.repeats}")
    if args.layer_repeats < 1:
        raise SystemExit(f"error: --layer-repeats must be >= 1, got {args.layer_repeats}")
    if args.section == "dendrites":
        from reproduce.speed_dendrites import dendrites_main

        return dendrites_main(args)
    if args.section == "layers":
        res = {"threads": torch.get_num_threads(), "torch": torch.__version__,
               "machine": platform.processor() or platform.machine(),
               "layers": layers_section(args.layer_repeats)}
        return _finish(res, args, argv)
    import os
    import warnings

    warnings.filterwarnings("ignore")
    from avalanche_sparse.benchmarks import permuted_mnist
    from avalanche_sparse.benchmarks.data import mnist_raw_dir, resolve_root
    from avalanche_sparse.benchmarks.scenarios import MNIST_MEAN, MNIST_STD, mnist_tensors, pixel_permutations
    from avalanche_sparse.strategies import FastTensorLoaderPlugin

    root = resolve_root(args.root)
    res: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__,
                 "machine": platform.processor() or platform.machine(), "batch": BATCH,
                 "epochs": args.epochs, "repeats": args.repeats}
    if hasattr(os, "getloadavg"):
        res["loadavg_before"] = [round(v, 2) for v in os.getloadavg()]
    t = time.perf_counter()
    ours = permuted_mnist(1, seed=0, root=root)
    res["build_ours_s"] = time.perf_counter() - t
    exp = ours.train_stream[0]
    # the same pre-permuted, normalised tensors for the bare loop
    xtr, ytr, _, _ = mnist_tensors(root)
    perm = pixel_permutations(1, 784, 0)[0]
    x = ((xtr.reshape(-1, 784)[:, perm] - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28).contiguous()
    y = ytr
    stock_exp = None
    if not args.skip_stock:
        from avalanche.benchmarks.classic import PermutedMNIST

        t = time.perf_counter()
        stock = PermutedMNIST(1, seed=0, dataset_root=str(mnist_raw_dir(root).parent.parent))
        res["build_stock_s"] = time.perf_counter() - t
        stock_exp = stock.train_stream[0]
    paths = {
        "bare": lambda: bare_epoch(x, y, args.epochs),
        "ours": lambda: naive_epoch(exp, args.epochs, [FastTensorLoaderPlugin()]),
        "ours_plain": lambda: naive_epoch(exp, args.epochs),
    }
    from torch.utils.data import DataLoader, TensorDataset

    loaders = {
        "bare": lambda: DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True),
        "ours": lambda: avalanche_loader(exp, True),
        "ours_plain": lambda: avalanche_loader(exp, False),
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    data_times: dict[str, list[float]] = {k: [] for k in loaders}
    if stock_exp is not None:
        times["stock"], data_times["stock"] = [], []
    for r in range(args.repeats):
        for name, fn in paths.items():
            times[name].append(fn())
            data_times[name].append(loader_epoch(loaders[name]()))
        if stock_exp is not None and r == 0:
            times["stock"].append(naive_epoch(stock_exp, args.epochs))
            data_times["stock"].append(loader_epoch(avalanche_loader(stock_exp, False)))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items())
              + " | data only: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in data_times.items()),
              flush=True)
    res["samples_s"] = {k: [round(v, 6) for v in vs] for k, vs in times.items()}
    for k, vs in times.items():
        res[f"{k}_epoch_s"] = _median(vs)
    for k in times:
        if k != "bare":
            n = len(times[k])
            res[f"{k}_vs_bare"] = _median([a / b for a, b in zip(times[k], times["bare"][:n])])
    # the data path alone (one epoch of minibatches, no model)
    res["data_only_samples_s"] = {k: [round(v, 6) for v in vs] for k, vs in data_times.items()}
    for k, vs in data_times.items():
        res[f"data_only_{k}_s"] = _median(vs)
    if hasattr(os, "getloadavg"):
        res["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.note:
        res["note"] = args.note
    for k, v in res.items():
        print(f"{k:16s} {v:.3f}" if isinstance(v, float) else f"{k:16s} {v}")
    return _finish(res, args, argv)


def layers_section(repeats: int = 200) -> list[dict]:
    """Sparse-layer overhead (see the module docstring); prints the table and
    the ratio sparse / dense per size, returns the rows."""
    from reproduce.speed_layers import bench_kwinners, format_table

    print("\n== sparse layers: SparseWeights(Linear) + KWinners vs Linear + ReLU, fwd+bwd ==")
    rows = bench_kwinners(sizes=((784, 1000), (1000, 1000)), batch=BATCH, repeats=repeats)
    print(format_table(rows))
    for r in rows:
        r["ratio"] = r["sparse_ms"] / r["dense_ms"]
        print(f"{r['in']}x{r['out']}: sparse / dense = {r['ratio']:.3f} (target <= 1.15)")
    return rows


def _finish(res: dict, args, argv) -> int:
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        res["command"] = "python reproduce/speed.py " + " ".join(argv or sys.argv[1:])
        atomic_write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
