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

``--section dendrites`` (no data needed) instead times one training step of
the Active Dendrites Network of the paper (``DendriticMLP``, hidden
[2048, 2048], 10 segments, k-WTA 5 %, 50 % weight sparsity, batch 256) against
the same network without segments (``num_segments=0``), interleaved, median
of ``--repeats``: forward + backward with the batch sharing one prototype (as
in training), forward + backward with one distinct context per sample (the
general case), and a full training step (+ Adam step + re-zeroing); then
estimates the CPU time of the full preset's ``dendrites`` cell from the step
time (10 tasks x 3 epochs x 235 steps).
Section "sparse layers" (:mod:`reproduce.speed_layers`): forward + backward of
``SparseWeights(Linear) -> KWinners`` against ``Linear -> ReLU`` at 784x1000
and 1000x1000, batch 128 (interleaved medians), and the ratio sparse / dense
(target <= 1.15). ``--only-layers`` runs this section alone (no data needed),
``--skip-layers`` skips it.
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

__all__ = ["mlp", "bare_epoch", "naive_epoch", "dendrite_step_times", "layers_section", "main"]

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


def dendrite_step_times(hidden_sizes=(2048, 2048), num_segments: int = 10, batch: int = 256,
                        repeats: int = 5, seed: int = 0) -> dict:
    """Median seconds of forward+backward (and of a full training step) of a
    ``DendriticMLP`` against the same network without segments."""
    import statistics

    from avalanche_sparse.layers import rezero_weights
    from avalanche_sparse.models import DendriticMLP

    torch.manual_seed(seed)
    kw = dict(hidden_sizes=list(hidden_sizes), kw_percent_on=0.05, weight_sparsity=0.5, seed=seed)
    nets = {"dendritic": DendriticMLP(784, 10, num_segments=num_segments, **kw),
            "no_segments": DendriticMLP(784, 10, num_segments=0, **kw)}
    protos = torch.randn(num_segments, 784)
    for t in range(num_segments):
        nets["dendritic"].update_prototype(t, protos[t], 1)
    nets["dendritic"].context_task = 0
    opts = {k: torch.optim.Adam(m.parameters(), lr=5e-4) for k, m in nets.items()}
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    per_sample = torch.randn(batch, 784)
    layers = nets["dendritic"].hidden_layers

    def fwd_bwd(name):
        m = nets[name]
        m.zero_grad(set_to_none=True)
        t = time.perf_counter()
        loss_fn(m(x), y).backward()
        return time.perf_counter() - t

    def fwd_bwd_per_sample():
        m = nets["dendritic"]
        m.zero_grad(set_to_none=True)
        t = time.perf_counter()
        h = x
        for layer, act in zip(layers, m.activations):
            h = act(layer(h, per_sample))
        loss_fn(m.classifier(h), y).backward()
        return time.perf_counter() - t

    def step(name):
        m, opt = nets[name], opts[name]
        opt.zero_grad(set_to_none=True)
        t = time.perf_counter()
        loss_fn(m(x), y).backward()
        opt.step()
        rezero_weights(m)
        return time.perf_counter() - t

    runs = {"dendritic_fwd_bwd_s": lambda: fwd_bwd("dendritic"),
            "no_segments_fwd_bwd_s": lambda: fwd_bwd("no_segments"),
            "dendritic_per_sample_context_fwd_bwd_s": fwd_bwd_per_sample,
            "dendritic_train_step_s": lambda: step("dendritic"),
            "no_segments_train_step_s": lambda: step("no_segments")}
    for f in runs.values():  # warm-up (also builds Adam state)
        f()
    times: dict = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():
            times[k].append(f())
    res = {k: statistics.median(v) for k, v in times.items()}
    res.update(hidden_sizes=list(hidden_sizes), num_segments=num_segments, batch=batch, repeats=repeats,
               segment_params=sum(layer.segment_weights.numel() for layer in layers),
               feedforward_params=sum(p.numel() for p in nets["no_segments"].parameters()))
    res["fwd_bwd_ratio"] = res["dendritic_fwd_bwd_s"] / res["no_segments_fwd_bwd_s"]
    res["train_step_ratio"] = res["dendritic_train_step_s"] / res["no_segments_train_step_s"]
    return res


def _dendrites_main(args) -> int:
    res = {"threads": torch.get_num_threads(), "torch": torch.__version__,
           "machine": platform.processor() or platform.machine()}
    res["paper_size"] = dendrite_step_times(repeats=args.repeats)
    # full preset `dendrites` cell: 10 tasks x 3 epochs x ceil(60000 / 256) steps (training only)
    steps = 10 * 3 * -(-60000 // 256)
    res["full_preset_dendrites_steps"] = steps
    res["full_preset_dendrites_train_estimate_h"] = steps * res["paper_size"]["dendritic_train_step_s"] / 3600
    res["quick_size"] = dendrite_step_times(hidden_sizes=(256,), num_segments=3, batch=128,
                                            repeats=max(args.repeats, 10))
    print(f"full preset dendrites cell, training only: {steps} steps, about "
          f"{res['full_preset_dendrites_train_estimate_h']:.1f} h")
    for size in ("paper_size", "quick_size"):
        print(size)
        for k, v in res[size].items():
            print(f"  {k:40s} {v:.4f}" if isinstance(v, float) else f"  {k:40s} {v}")
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        res["command"] = "python reproduce/speed.py " + " ".join(sys.argv[1:])
        atomic_write_json(args.out, res)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs per measurement (>= 1)")
    p.add_argument("--root", help="data root (default: $AVALANCHE_SPARSE_DATA or ~/.avalanche/data)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--skip-stock", action="store_true", help="do not measure the stock generator")
    p.add_argument("--section", choices=("data", "dendrites"), default="data",
                   help="data: the scenario/epoch comparison (default); dendrites: DendriticMLP step times")
    p.add_argument("--repeats", type=int, default=5, help="repeats of each dendrites timing (>= 1)")
    p.add_argument("--skip-layers", action="store_true", help="do not measure the sparse layers")
    p.add_argument("--only-layers", action="store_true", help="measure the sparse layers only")
    p.add_argument("--layer-repeats", type=int, default=200, help="repeats of the layer benchmark")
    args = p.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"error: --repeats must be >= 1, got {args.repeats}")
    if args.section == "dendrites":
        return _dendrites_main(args)
    if args.epochs < 1:
        raise SystemExit(f"error: --epochs must be >= 1, got {args.epochs}")
    import warnings

    warnings.filterwarnings("ignore")
    from avalanche_sparse.benchmarks import permuted_mnist
    from avalanche_sparse.benchmarks.scenarios import MNIST_MEAN, MNIST_STD, mnist_tensors, pixel_permutations
    from avalanche_sparse.benchmarks.data import mnist_raw_dir, resolve_root

    res: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__,
                 "machine": platform.processor() or platform.machine(), "batch": BATCH,
                 "epochs": args.epochs}
    if args.only_layers:
        res["layers"] = layers_section(args.layer_repeats)
        return _finish(res, args, argv)
    root = resolve_root(args.root)
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
    if not args.skip_layers:
        res["layers"] = layers_section(args.layer_repeats)
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
