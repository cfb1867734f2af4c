"""Cost of complex synapses: ComplexSynapseSGD (5 beakers) against torch SGD.

Usage::

    python reproduce/speed.py --complex-synapse [--out FILE]     # this section only
    python -m reproduce.speed_optim [--repeats 30] [--block 5] [--threads 1] [--out FILE]

One run, one model: the MLP 784-1000-1000-10 of ``speed.py`` (1.8 M
parameters), batch 128 of random inputs, cross-entropy loss, SGD lr 0.01
without momentum. Variants (each with its own copy of the same initial
model):

* ``torch_sgd`` -- :class:`torch.optim.SGD` (its default path on this device);
* ``torch_sgd_foreach`` -- :class:`torch.optim.SGD` with ``foreach=True``;
* ``cs_sgd`` -- :class:`~avalanche_sparse.optim.ComplexSynapseSGD` with
  ``n_beakers=5``, defaults (on CPU the fused one-pass kernel; non-finite
  check on);
* ``cs_sgd_blocked`` -- the same with ``fused=False`` (on CPU the
  cache-blocked path, the default before the fused kernel);
* ``cs_sgd_nocheck`` -- the same with ``nonfinite="ignore"``;
* ``cs_sgd_foreach`` -- the same with ``foreach=True`` (multi-tensor ops
  over whole tensors);
* ``cs_sgd_single`` -- the same with ``foreach=False`` (per-tensor loop over
  whole tensors).

Measured per variant:

* ``step_ms`` -- ``optimizer.step()`` alone, gradients already in place;
* ``iteration_ms`` -- a whole training iteration: ``zero_grad``, forward,
  loss, backward, ``step``;
* ``state_mb`` -- bytes of the optimizer state (all tensors in
  ``optimizer.state``), measured from the tensors;
* ``peak_mb`` -- parameters + gradients + optimizer state, the memory a
  training step holds besides activations (on CUDA also the allocator's
  peak, ``cuda_peak_mb``).

Timings (wall clock and process CPU time; on a shared machine the CPU time
leaves out the time other jobs held the core) are medians over ``--repeats``
rounds; in each round every variant
runs ``--block`` iterations in turn (interleaved, so slow drifts of a shared
machine hit all variants alike) after a warm-up. Ratios are to ``torch_sgd``.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["VARIANTS", "bench_optimizers", "main"]

BATCH = 128
LR = 0.01


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000),
                         nn.ReLU(), nn.Linear(1000, 10))


def _variants() -> dict[str, Callable]:
    from avalanche_sparse.optim import ComplexSynapseSGD

    return {
        "torch_sgd": lambda ps: torch.optim.SGD(ps, lr=LR),
        "torch_sgd_foreach": lambda ps: torch.optim.SGD(ps, lr=LR, foreach=True),
        "cs_sgd": lambda ps: ComplexSynapseSGD(ps, lr=LR, n_beakers=5),
        "cs_sgd_blocked": lambda ps: ComplexSynapseSGD(ps, lr=LR, n_beakers=5, fused=False),
        "cs_sgd_nocheck": lambda ps: ComplexSynapseSGD(ps, lr=LR, n_beakers=5, nonfinite="ignore"),
        "cs_sgd_foreach": lambda ps: ComplexSynapseSGD(ps, lr=LR, n_beakers=5, foreach=True),
        "cs_sgd_single": lambda ps: ComplexSynapseSGD(ps, lr=LR, n_beakers=5, foreach=False),
    }


#: variant names, in measurement order
VARIANTS = ("torch_sgd", "torch_sgd_foreach", "cs_sgd", "cs_sgd_blocked", "cs_sgd_nocheck",
            "cs_sgd_foreach", "cs_sgd_single")


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values()
               for v in s.values() if torch.is_tensor(v))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_optimizers(*, repeats: int = 30, block: int = 5, warmup: int = 3,
                     device: str = "cpu", variants=None) -> dict:
    """Interleaved timings and memory of the optimizer variants (see module docstring).

    :returns: ``{"variants": {name: {...}}, "n_params": int, ...}``.
    """
    if repeats < 1 or block < 1 or warmup < 0:
        raise ValueError(f"repeats and block must be >= 1 and warmup >= 0, got {repeats}, {block}, {warmup}")
    dev = torch.device(device)
    makers = _variants()
    names = list(variants or makers)
    bad = [n for n in names if n not in makers]
    if bad:
        raise ValueError(f"unknown variant(s) {bad}; valid: {list(makers)}")
    torch.manual_seed(0)
    base = _mlp().to(dev)
    n_params = sum(p.numel() for p in base.parameters())
    g = torch.Generator(device="cpu").manual_seed(1)
    batches = [(torch.randn(BATCH, 1, 28, 28, generator=g).to(dev),
                torch.randint(0, 10, (BATCH,), generator=g).to(dev)) for _ in range(4)]
    loss_fn = nn.CrossEntropyLoss()
    runs = {}
    for name in names:
        model = _mlp().to(dev)
        model.load_state_dict(base.state_dict())
        runs[name] = (model, makers[name](model.parameters()))

    def iteration(model, opt, k):
        x, y = batches[k % len(batches)]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for name in names:  # warm-up; creates the lazy state
        model, opt = runs[name]
        for k in range(warmup):
            iteration(model, opt, k)
    it_times = {n: [] for n in names}
    step_times = {n: [] for n in names}
    it_cpu = {n: [] for n in names}
    step_cpu = {n: [] for n in names}
    for r in range(repeats):
        for name in names:
            model, opt = runs[name]
            _sync(dev)
            t, c = time.perf_counter(), time.process_time()
            for k in range(block):
                iteration(model, opt, r * block + k)
            _sync(dev)
            it_times[name].append((time.perf_counter() - t) / block * 1e3)
            it_cpu[name].append((time.process_time() - c) / block * 1e3)
            # gradients of the last iteration are in place: time step() alone
            _sync(dev)
            t, c = time.perf_counter(), time.process_time()
            for _ in range(block):
                opt.step()
            _sync(dev)
            step_times[name].append((time.perf_counter() - t) / block * 1e3)
            step_cpu[name].append((time.process_time() - c) / block * 1e3)
    res: dict = {"n_params": n_params, "batch": BATCH, "lr": LR, "repeats": repeats, "block": block,
                 "device": str(dev), "threads": torch.get_num_threads(), "variants": {}}
    param_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
    for name in names:
        model, opt = runs[name]
        state = _state_bytes(opt)
        row = {
            "step_ms": statistics.median(step_times[name]),
            "iteration_ms": statistics.median(it_times[name]),
            "step_cpu_ms": statistics.median(step_cpu[name]),
            "iteration_cpu_ms": statistics.median(it_cpu[name]),
            "state_mb": state / 2**20,
            "peak_mb": (2 * param_bytes + state) / 2**20,
        }
        res["variants"][name] = row
    ref = res["variants"].get("torch_sgd")
    if ref:
        for row in res["variants"].values():
            row["step_vs_torch_sgd"] = row["step_ms"] / ref["step_ms"]
            row["iteration_vs_torch_sgd"] = row["iteration_ms"] / ref["iteration_ms"]
            row["peak_vs_torch_sgd"] = row["peak_mb"] / ref["peak_mb"]
            row["step_cpu_vs_torch_sgd"] = row["step_cpu_ms"] / ref["step_cpu_ms"]
            row["iteration_cpu_vs_torch_sgd"] = row["iteration_cpu_ms"] / ref["iteration_cpu_ms"]
    if dev.type == "cuda":  # allocator peak of a fresh run per variant
        for name in names:
            model, opt = runs[name]
            torch.cuda.reset_peak_memory_stats(dev)
            iteration(model, opt, 0)
            res["variants"][name]["cuda_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return res


def format_table(res: dict) -> str:
    """Markdown table of :func:`bench_optimizers`' result."""
    nan = float("nan")
    lines = ["| variant | step wall / CPU (ms) | iteration wall / CPU (ms) | iteration vs torch SGD, wall / CPU "
             "| state (MB) | params+grads+state (MB) |", "|---|---|---|---|---|---|"]
    for name, r in res["variants"].items():
        lines.append(f"| `{name}` | {r['step_ms']:.1f} / {r['step_cpu_ms']:.1f} | "
                     f"{r['iteration_ms']:.1f} / {r['iteration_cpu_ms']:.1f} | "
                     f"{r.get('iteration_vs_torch_sgd', nan):.2f}x / {r.get('iteration_cpu_vs_torch_sgd', nan):.2f}x | "
                     f"{r['state_mb']:.1f} | {r['peak_mb']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=30, help="interleaved rounds (>= 1)")
    p.add_argument("--block", type=int, default=5, help="iterations per variant per round (>= 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.threads < 1:
        raise SystemExit(f"error: --threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    try:
        res = bench_optimizers(repeats=args.repeats, block=args.block, device=args.device)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    res.update(torch=torch.__version__, machine=platform.processor() or platform.machine())
    print(format_table(res))
    if args.out:
        from avalanche_sparse.io import atomic_write_json

        res["command"] = "python -m reproduce.speed_optim " + " ".join(argv if argv is not None else sys.argv[1:])
        atomic_write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
