"""Growth vs fixed sparsity vs dense, at equal final parameter count (provisional).

A stand-in sparse MLP built here from the library's layers (seed wiring:
``SparseWeights(Linear) -> KWinners`` per hidden layer, dense classifier) is
trained on a continual benchmark three or four ways, interleaved per seed:

* ``fixed``: density ``d`` from the start (what ``sparse_mlp`` does);
* ``growth``: density ``d(1 - share)`` at the start, :class:`SynapseGrowthPlugin`
  grows ``d * share / (T - 1)`` per experience (gradient criterion) and freezes
  earlier synapses, ending at ``d`` (same non-zero weights as ``fixed``);
* ``growth_random``: the same with the random criterion;
* ``growth_scale``: gradient criterion, earlier synapses trained at 0.1 x lr
  instead of frozen;
* ``dense``: a dense ReLU MLP whose width gives about the same parameter count.

Usage::

    python reproduce/growth_compare.py --benchmark permuted_mnist --n-experiences 5 --seeds 0 1 2

Prints one line per run and a summary (mean over seeds of the average accuracy
over all experiences after the last one). Timings are not measured here.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn

__all__ = ["StandInSparseMLP", "main"]


class StandInSparseMLP(nn.Module):
    """``SparseWeights(Linear) -> KWinners`` hidden layers, dense classifier."""

    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int, density: float,
                 percent_on: float, seed: int) -> None:
        super().__init__()
        from avalanche_sparse.layers import KWinners, SparseWeights, normalize_sparse_weights

        mods: list[nn.Module] = [nn.Flatten()]
        width = n_in
        for i in range(layers):
            mods += [SparseWeights(nn.Linear(width, hidden), sparsity=1.0 - density, seed=seed + i),
                     KWinners(hidden, percent_on=percent_on, boost_strength=1.5, duty_cycle_period=1000)]
            width = hidden
        mods.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*mods)
        normalize_sparse_weights(self)

    def forward(self, x):
        return self.net(x)


def count_nonzero_params(model: nn.Module) -> int:
    """Parameters that are not pruned (masked weights excluded)."""
    from avalanche_sparse.layers import SparseWeightsBase

    masked = {id(m.module.weight): int((~m.zero_mask).sum()) for m in model.modules()
              if isinstance(m, SparseWeightsBase)}
    return sum(masked.get(id(p), p.numel()) for p in model.parameters())


def _run(kind: str, bench, args, seed: int) -> tuple[float, int]:
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_sparse.layers import rezero_weights, update_boost_strength
    from avalanche_sparse.strategies import SynapseGrowthPlugin
    from avalanche_sparse.strategies.growth import growth_schedule
    from avalanche.core import SupervisedPlugin

    class Maintain(SupervisedPlugin):
        def after_update(self, strategy, *a, **k):
            rezero_weights(strategy.model)

        def after_training_epoch(self, strategy, *a, **k):
            update_boost_strength(strategy.model)

    torch.manual_seed(seed)
    T = len(bench.train_stream)
    plugins: list = []
    if kind == "dense":
        model = nn.Sequential(nn.Flatten(), *[m for i in range(args.layers) for m in (
            nn.Linear(784 if i == 0 else args.dense_hidden, args.dense_hidden), nn.ReLU())],
            nn.Linear(args.dense_hidden, 10))
    else:
        d0, g = growth_schedule(args.density, T, args.share) if kind.startswith("growth") else (args.density, 0)
        model = StandInSparseMLP(784, 10, args.hidden, args.layers, d0, args.percent_on, seed)
        plugins.append(Maintain())
        if kind.startswith("growth"):
            plugins.append(SynapseGrowthPlugin(
                grow_fraction=g, max_density=args.density,
                criterion="random" if kind == "growth_random" else "gradient",
                consolidation="scale" if kind == "growth_scale" else "freeze", lr_scale=0.1, seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    strat = Naive(model=model, optimizer=opt, criterion=nn.CrossEntropyLoss(), train_mb_size=args.mb,
                  train_epochs=args.epochs, eval_mb_size=1024, plugins=plugins,
                  evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))
    for exp in bench.train_stream:
        strat.train(exp)
    res = strat.eval(bench.test_stream)
    accs = [v for k, v in res.items() if k.startswith("Top1_Acc_Exp/eval_phase/test_stream")]
    return sum(accs) / len(accs), count_nonzero_params(model)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="permuted_mnist", choices=["permuted_mnist", "split_mnist_class"])
    p.add_argument("--n-experiences", type=int, default=5)
    p.add_argument("--subsample", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--share", type=float, default=0.5)
    p.add_argument("--percent-on", type=float, default=0.1)
    p.add_argument("--dense-hidden", type=int, default=0, help="0: match the sparse parameter count")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--mb", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--kinds", nargs="+", default=["fixed", "growth", "growth_random", "dense"],
                   help="any of fixed, growth, growth_random, growth_scale, dense")
    args = p.parse_args(argv)
    from avalanche_sparse.benchmarks import permuted_mnist, split_mnist

    if args.dense_hidden == 0:  # same parameter count as the sparse MLP at its final density
        sparse = count_nonzero_params(StandInSparseMLP(784, 10, args.hidden, args.layers, args.density,
                                                       args.percent_on, 0))
        h = 1
        while True:
            n = 784 * h + h + (args.layers - 1) * (h * h + h) + 10 * h + 10
            if n > sparse:
                break
            h += 1
        args.dense_hidden = h - 1
    results: dict[str, list[float]] = {k: [] for k in args.kinds}
    for seed in args.seeds:
        if args.benchmark == "permuted_mnist":
            bench = permuted_mnist(args.n_experiences, seed=seed, subsample=args.subsample)
        else:
            bench = split_mnist(args.n_experiences, scenario="class", seed=seed, subsample=args.subsample)
        for kind in args.kinds:
            t = time.time()
            acc, n_params = _run(kind, bench, args, seed)
            results[kind].append(acc)
            print(f"seed {seed} {kind:14s} avg acc {acc:.4f}  non-zero params {n_params}  "
                  f"({time.time() - t:.0f} s)", flush=True)
    print(f"\n{args.benchmark}, {args.n_experiences} experiences, subsample {args.subsample}, "
          f"{args.epochs} epoch(s), hidden {args.hidden}x{args.layers}, density {args.density}, "
          f"dense width {args.dense_hidden}")
    for kind, accs in results.items():
        m = sum(accs) / len(accs)
        s = (sum((a - m) ** 2 for a in accs) / max(1, len(accs) - 1)) ** 0.5
        print(f"{kind:14s} {m:.4f} +- {s:.4f} (sd over {len(accs)} seeds)")
    return results


if __name__ == "__main__":
    main()
