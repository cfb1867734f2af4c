"""Our ``DendriticMLP`` beside the reference implementation, trained by one loop.

Why: on Permuted MNIST with 2 and 5 tasks our ``dendrites`` row is 2-3 points
below the figures Iyer et al. 2022 publish (Front. Neurorobot. 16:846219), while
at 10 tasks it is above. This script asks whether the layers are the cause. It
builds Numenta's own ``DendriticMLP`` (``nupic.research`` dendrites package on
top of ``nupic.torch``; AGPL-3.0, imported from a local checkout the user
provides, never copied here) and ours with the same settings (PROTOTYPE_<n>:
2x2048 hidden units, k-WTA 5 %, weight sparsity 0.5, context density 0.1,
``num_segments`` = number of tasks, the "modified" init), and trains both with
the same plain loop:

* tasks in order; task 0 is plain MNIST, the others a fixed random pixel
  permutation each (seed 42), inputs normalised with the MNIST mean and std;
* per task: its prototype (mean training input) is stored, a fresh Adam
  (lr 5e-4) runs ``--epochs`` shuffled passes of batch 256 with the task's
  prototype as every sample's context, and the pruned weights are re-zeroed
  after every step;
* after each task, every seen task's test set is scored with the context of
  the nearest stored prototype (no task label at test time).

It writes a JSON file (atomically) with the per-task accuracies of every model
and seed, the command and the reference commits.

Setup (needs the two repositories; not on PyPI)::

    git clone https://github.com/numenta/nupic.torch
    git clone https://github.com/numenta/nupic.research
    python reproduce/dendrites_reference_check.py --nupic-torch nupic.torch \\
        --nupic-research nupic.research --tasks 2 --seeds 0 \\
        --out reproduce/results/dendrites_reference_check.json

Only the dendrites package's module files are imported (its package
``__init__`` pulls in plotting and experiment code with more dependencies).
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, Optional, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

__all__ = ["load_reference_mlp", "task_data", "run_sequence", "main"]

MNIST_MEAN, MNIST_STD = 0.13062755, 0.30810780  # the reference's PermutedMNIST constants
_DENDRITES = "packages/dendrites/src/nupic/research/frameworks/dendrites"


def _stub_package(name: str, path: Path) -> None:
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]  # type: ignore[attr-defined]
    sys.modules[name] = mod


def load_reference_mlp(nupic_torch: Optional[Path], nupic_research: Optional[Path]) -> type:
    """The reference ``DendriticMLP`` class.

    With ``nupic_research`` (a checkout of numenta/nupic.research) the
    dendrites ``modules`` files are imported under stub parent packages, so
    their heavy package ``__init__`` files are not run; ``nupic_torch`` (a
    checkout of numenta/nupic.torch) is put on ``sys.path`` first. Without
    ``nupic_research`` the installed package is imported the normal way (its
    package ``__init__`` files and their dependencies included). The stubs
    replace any ``nupic.research`` modules already imported in this process.
    """
    if nupic_torch is not None:
        src = Path(nupic_torch) / "src"
        if not (src / "nupic" / "torch" / "modules").is_dir():
            raise FileNotFoundError(f"--nupic-torch: {src}/nupic/torch/modules not found; pass a "
                                    f"checkout of github.com/numenta/nupic.torch")
        sys.path.insert(0, str(src))
    if nupic_research is None:
        return importlib.import_module("nupic.research.frameworks.dendrites.modules").DendriticMLP
    dend = Path(nupic_research) / _DENDRITES
    if not (dend / "modules" / "dendritic_mlp.py").is_file():
        raise FileNotFoundError(f"--nupic-research: {dend}/modules/dendritic_mlp.py not found; pass "
                                f"a checkout of github.com/numenta/nupic.research")
    try:
        import nupic.torch.modules  # noqa: F401
    except ImportError as err:
        raise ImportError(f"nupic.torch is not importable ({err}); pass --nupic-torch, a checkout of "
                          f"github.com/numenta/nupic.torch") from err

    research = dend.parents[1]  # .../src/nupic/research
    _stub_package("nupic.research", research)
    _stub_package("nupic.research.frameworks", research / "frameworks")
    _stub_package("nupic.research.frameworks.dendrites", dend)
    _stub_package("nupic.research.frameworks.dendrites.modules", dend / "modules")
    return importlib.import_module("nupic.research.frameworks.dendrites.modules.dendritic_mlp").DendriticMLP


def task_data(n_tasks: int, root=None):
    """Flattened, normalised MNIST and ``n_tasks`` pixel orders (task 0: identity)."""
    from benchmarks.data import load_mnist

    xtr, ytr, xte, yte = load_mnist(root)
    norm = lambda x: (x.float().div(255).reshape(x.shape[0], -1) - MNIST_MEAN) / MNIST_STD  # noqa: E731
    g = torch.Generator().manual_seed(42)
    perms = [torch.arange(784)] + [torch.randperm(784, generator=g) for _ in range(n_tasks - 1)]
    return norm(xtr), ytr.long(), norm(xte), yte.long(), perms


def _reference_model(cls: type, n_tasks: int):
    from nupic.torch.modules import rezero_weights

    model = cls(784, 10, [2048, 2048], n_tasks, 784, True, kw_percent_on=0.05,
                context_percent_on=0.1, dendrite_weight_sparsity=0.0, weight_sparsity=0.5)
    protos: list = []

    def forward(x, task: Optional[int]):
        p = torch.stack(protos)
        # the reference hands one context row per sample (prototype repeated / nearest)
        c = p[task].expand(x.shape[0], -1) if task is not None else p[torch.cdist(x, p).argmin(1)]
        return model(x, c)

    return model, forward, protos.append, lambda: model.apply(rezero_weights)


def _our_model(n_tasks: int, seed: int):
    from avalanche_sparse.layers import rezero_weights
    from avalanche_sparse.models import DendriticMLP

    model = DendriticMLP(784, 10, hidden_sizes=[2048, 2048], num_segments=n_tasks, seed=seed)

    def forward(x, task: Optional[int]):
        model.context_task = task
        return model(x)

    def add(proto):
        # the loop hands over the task's mean input: a "sum" of one sample
        model.update_prototype(model.num_prototypes, proto, 1)

    return model, forward, add, lambda: rezero_weights(model)


def run_sequence(model, forward: Callable, add_prototype: Callable, rezero: Callable, data, *,
                 epochs: int = 1, lr: float = 5e-4, batch_size: int = 256,
                 log: Callable[[str], None] = print) -> list[list[float]]:
    """Train ``model`` on the tasks in order; return, after each task, the
    accuracy (%) on every seen task's test set."""
    xtr, ytr, xte, yte, perms = data
    history = []
    for t, perm in enumerate(perms):
        xt = xtr[:, perm]
        add_prototype(xt.mean(0))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(xt.shape[0])
            for i in range(0, xt.shape[0], batch_size):
                idx = order[i:i + batch_size]
                loss = F.cross_entropy(forward(xt[idx], t), ytr[idx])
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at task {t}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rezero()
        model.eval()
        accs = []
        with torch.no_grad():
            for s in range(t + 1):
                xs = xte[:, perms[s]]
                pred = torch.cat([forward(xs[j:j + 512], None).argmax(1) for j in range(0, xs.shape[0], 512)])
                accs.append(round(100.0 * (pred == yte).float().mean().item(), 2))
        history.append(accs)
        log(f"  after task {t}: {accs} (mean {sum(accs) / len(accs):.2f})")
    return history


def _git_commit(path: Optional[Path]) -> Optional[str]:
    if path is None:
        return None
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nupic-torch", type=Path, help="checkout of github.com/numenta/nupic.torch")
    p.add_argument("--nupic-research", type=Path, help="checkout of github.com/numenta/nupic.research")
    p.add_argument("--models", nargs="+", default=["reference", "ours"], choices=["reference", "ours"])
    p.add_argument("--tasks", type=int, default=2, help="number of tasks (>= 1)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per task (PROTOTYPE_2/_5: 1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--root", help="data root (default: the package's staging root)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    if args.tasks < 1 or args.epochs < 1:
        p.error(f"--tasks and --epochs must be >= 1, got {args.tasks} and {args.epochs}")
    torch.set_num_threads(args.threads)
    ref_cls = load_reference_mlp(args.nupic_torch, args.nupic_research) if "reference" in args.models else None
    data = task_data(args.tasks, args.root)
    runs = []
    for seed in args.seeds:
        for which in args.models:
            torch.manual_seed(seed)
            model, forward, add, rezero = (_reference_model(ref_cls, args.tasks) if which == "reference"
                                           else _our_model(args.tasks, seed))
            print(f"{which}, seed {seed}:", flush=True)
            t0 = time.perf_counter()
            hist = run_sequence(model, forward, add, rezero, data, epochs=args.epochs,
                                log=lambda s: print(s, flush=True))
            runs.append({"model": which, "seed": seed, "acc_after_each_task": hist,
                         "final_mean": round(sum(hist[-1]) / len(hist[-1]), 2),
                         "seconds": round(time.perf_counter() - t0, 1)})
    from avalanche_sparse.io import atomic_write_json

    atomic_write_json(args.out, {
        "command": "python reproduce/dendrites_reference_check.py "
                   + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "protocol": {"tasks": args.tasks, "epochs_per_task": args.epochs, "lr": 5e-4, "batch_size": 256,
                     "hidden_sizes": [2048, 2048], "kw_percent_on": 0.05, "weight_sparsity": 0.5,
                     "context_percent_on": 0.1, "num_segments": args.tasks, "threads": args.threads},
        "reference_commits": {"nupic.torch": _git_commit(args.nupic_torch),
                              "nupic.research": _git_commit(args.nupic_research)},
        "runs": runs,
        "note": "seconds are wall time on this machine and depend on its load; not a benchmark",
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
