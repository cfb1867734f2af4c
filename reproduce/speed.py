"""Speed of our scenarios against plain Avalanche and a bare torch loop.

Usage::

    python reproduce/speed.py [--epochs 1] [--root DIR] [--out reproduce/results/speed.json]

One run, the same model (MLP 784-1000-1000-10, SGD, batch 128) and the same
Permuted MNIST data (one experience, 60k training images):

1. ``bare``: a torch loop over pre-permuted in-memory tensors
   (``DataLoader(TensorDataset)``, shuffled);
2. ``stock``: Avalanche ``Naive`` on the stock ``PermutedMNIST`` (per-sample
   PIL/tensor transforms);
3. ``ours``: Avalanche ``Naive`` on :func:`avalanche_sparse.benchmarks.permuted_mnist`.

Prints the epoch times, the building times of both benchmarks and the ratios
to the bare loop; writes them as JSON (atomically) when ``--out`` is given.

``--complex-synapse`` runs only the optimizer section instead
(:mod:`reproduce.speed_optim`: optimizer-step time, training-iteration time
and memory of ComplexSynapseSGD with 5 beakers against torch SGD on a
1.8 M-parameter MLP; its own options such as ``--repeats`` pass through).
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

__all__ = ["mlp", "bare_epoch", "naive_epoch", "main"]

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


def naive_epoch(experience, epochs: int = 1) -> float:
    """Seconds per epoch of Avalanche ``Naive`` training on one experience."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    model = mlp()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                     train_mb_size=BATCH, train_epochs=epochs, eval_mb_size=1024,
                     evaluator=EvaluationPlugin(loggers=[]))
    t = time.perf_counter()
    strategy.train(experience)
    return (time.perf_counter() - t) / epochs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs per measurement (>= 1)")
    p.add_argument("--root", help="data root (default: $AVALANCHE_SPARSE_DATA or ~/.avalanche/data)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--skip-stock", action="store_true", help="do not measure the stock generator")
    p.add_argument("--complex-synapse", action="store_true",
                   help="only the complex-synapse optimizer section (reproduce/speed_optim.py)")
    args, rest = p.parse_known_args(argv)
    if args.complex_synapse:  # optimizer step / iteration / memory, ComplexSynapseSGD vs torch SGD
        from reproduce.speed_optim import main as optim_main

        return optim_main(rest + (["--out", args.out] if args.out else []))
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.epochs < 1:
        raise SystemExit(f"error: --epochs must be >= 1, got {args.epochs}")
    import warnings

    warnings.filterwarnings("ignore")
    from avalanche_sparse.benchmarks import permuted_mnist
    from avalanche_sparse.benchmarks.scenarios import MNIST_MEAN, MNIST_STD, mnist_tensors, pixel_permutations
    from avalanche_sparse.benchmarks.data import mnist_raw_dir, resolve_root

    root = resolve_root(args.root)
    res: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__,
                 "machine": platform.processor() or platform.machine(), "batch": BATCH,
                 "epochs": args.epochs}
    t = time.perf_counter()
    ours = permuted_mnist(1, seed=0, root=root)
    res["build_ours_s"] = time.perf_counter() - t
    exp = ours.train_stream[0]
    # the same pre-permuted, normalised tensors for the bare loop
    xtr, ytr, _, _ = mnist_tensors(root)
    perm = pixel_permutations(1, 784, 0)[0]
    x = ((xtr.reshape(-1, 784)[:, perm] - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28).contiguous()
    y = ytr
    res["bare_epoch_s"] = bare_epoch(x, y, args.epochs)
    res["ours_epoch_s"] = naive_epoch(exp, args.epochs)
    if not args.skip_stock:
        from avalanche.benchmarks.classic import PermutedMNIST

        t = time.perf_counter()
        stock = PermutedMNIST(1, seed=0, dataset_root=str(mnist_raw_dir(root).parent.parent))
        res["build_stock_s"] = time.perf_counter() - t
        res["stock_epoch_s"] = naive_epoch(stock.train_stream[0], args.epochs)
        res["stock_vs_bare"] = res["stock_epoch_s"] / res["bare_epoch_s"]
    res["ours_vs_bare"] = res["ours_epoch_s"] / res["bare_epoch_s"]
    for k, v in res.items():
        print(f"{k:16s} {v:.3f}" if isinstance(v, float) else f"{k:16s} {v}")
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        res["command"] = "python reproduce/speed.py " + " ".join(argv or sys.argv[1:])
        atomic_write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
