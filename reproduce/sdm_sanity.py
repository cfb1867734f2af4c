"""Short sanity run of the SDM rows on Split MNIST class-IL (CPU budget).

Runs Table 1 cells with a reduced protocol (20% of MNIST, 5 epochs per task,
batch 128, plain SGD lr 0.05 for the baselines) through the same
:func:`reproduce.grid.run_cell` as the grid, and prints final average accuracy,
forgetting and the last accuracy-matrix row. Far from the paper's 500 epochs per
task: provisional, for checking that the machinery behaves, not a result.

    python reproduce/sdm_sanity.py --out /tmp/sdm-sanity sdmlp sdmlp_adam sdmlp_sgdm topk naive
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROTOCOL = {"n_experiences": 5, "subsample": 0.2, "train_epochs": 5, "train_mb_size": 128,
            "eval_mb_size": 1024, "optimizer": "sgd", "lr": 0.05, "hidden_sizes": [1000]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("methods", nargs="+")
    p.add_argument("--out", default="runs/sdm-sanity")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=PROTOCOL["train_epochs"])
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from reproduce.grid import run_cell

    proto = dict(PROTOCOL, train_epochs=args.epochs)
    for m in args.methods:
        t = time.time()
        r = run_cell(m, "split_mnist_class", args.seed, proto, Path(args.out), progress=False)
        last = [round(v, 3) for v in r.get("acc_matrix", [[]])[-1]]
        print(f"{m}: status {r['status']} ACC {r.get('avg_acc', float('nan')):.4f} "
              f"forgetting {r.get('forgetting')} last row {last} ({time.time() - t:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
