"""What the harder benchmarks show: each method on Split MNIST beside Split
Fashion-MNIST (same protocol, harder images) and Split CIFAR-10.

Reads the per-cell JSON files of a ``table1.py`` output folder and writes
``harder_benchmarks.md`` there (atomically). MNIST and its Fashion-MNIST twin
are compared on the seeds both have, so a method run with ten seeds on MNIST
and one on Fashion-MNIST is compared seed for seed; the CIFAR-10 column keeps
every seed and names its data (the original files or "CIFAR-10 (JPEG copy)")
as the cells record it. The gap is MNIST minus Fashion-MNIST, in accuracy
points.

Usage::

    python reproduce/compare_benchmarks.py --results reproduce/results/full
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path
from typing import Iterable, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["PAIRS", "compare", "render_markdown", "main"]

#: (easier benchmark, its harder twin) compared seed for seed
PAIRS: tuple[tuple[str, str], ...] = (("split_mnist_class", "split_fmnist_class"),
                                      ("split_mnist_task", "split_fmnist_task"))
CIFAR = "split_cifar10_class"


def _ok(cells: Iterable[dict], method: str, bench: str) -> dict[int, dict]:
    return {c["seed"]: c for c in cells
            if c.get("method") == method and c.get("benchmark") == bench
            and c.get("status") == "ok" and c.get("avg_acc") is not None}


def _problems(cells: Iterable[dict], method: str, bench: str) -> list[str]:
    """Statuses of ``method``'s unfinished cells on ``bench`` ("failed", "data not staged"...)."""
    return sorted({str(c.get("status")) for c in cells
                   if c.get("method") == method and c.get("benchmark") == bench
                   and c.get("status") != "ok"})


def _mean(values: list[float]) -> Optional[float]:
    return statistics.fmean(values) if values else None


def _pair_entry(cells: list[dict], m: str, easy: str, hard: str) -> dict:
    a, b = _ok(cells, m, easy), _ok(cells, m, hard)
    seeds = sorted(set(a) & set(b))
    entry: dict = {"seeds": seeds, "easy_seeds": sorted(a), "hard_seeds": sorted(b),
                   "easy_problems": _problems(cells, m, easy),
                   "hard_problems": _problems(cells, m, hard)}
    if seeds:
        acc_e = _mean([a[s]["avg_acc"] for s in seeds])
        acc_h = _mean([b[s]["avg_acc"] for s in seeds])
        entry.update(acc_easy=acc_e, acc_hard=acc_h, gap=acc_e - acc_h,
                     fgt_easy=_mean([a[s]["forgetting"] for s in seeds
                                     if a[s].get("forgetting") is not None]),
                     fgt_hard=_mean([b[s]["forgetting"] for s in seeds
                                     if b[s].get("forgetting") is not None]))
    return entry


def _cifar_entries(cells: list[dict], m: str) -> list[dict]:
    """One entry per CIFAR-10 data label (original files and JPEG copy never mixed)."""
    cif = [c for c in _ok(cells, m, CIFAR).values()]
    mn, fm = _ok(cells, m, PAIRS[0][0]), _ok(cells, m, PAIRS[0][1])
    out = []
    for label in sorted({c.get("label") or CIFAR for c in cif}):
        group = {c["seed"]: c for c in cif if (c.get("label") or CIFAR) == label}
        seeds = sorted(group)
        out.append({
            "label": label, "seeds": seeds,
            "acc": _mean([c["avg_acc"] for c in group.values()]),
            "forgetting": _mean([c["forgetting"] for c in group.values()
                                 if c.get("forgetting") is not None]),
            # the same method's class-IL accuracy on those seeds, where it has them
            "mnist_seeds": [s for s in seeds if s in mn],
            "mnist_acc": _mean([mn[s]["avg_acc"] for s in seeds if s in mn]),
            "fmnist_seeds": [s for s in seeds if s in fm],
            "fmnist_acc": _mean([fm[s]["avg_acc"] for s in seeds if s in fm]),
        })
    return out


def compare(cells: list[dict]) -> list[dict]:
    """One row per method that has a cell on any compared benchmark.

    Each row holds, per pair, the seeds both benchmarks finished, the mean
    accuracy and forgetting on both over those seeds and ``gap`` (easier
    minus harder accuracy, a fraction), and the statuses of unfinished cells;
    and ``cifar``, one entry per CIFAR-10 data label with its mean accuracy,
    forgetting and seeds, and the Split MNIST and Split Fashion-MNIST
    class-IL accuracy over whichever of those seeds they have.
    """
    benches = {b for pair in PAIRS for b in pair} | {CIFAR}
    methods = sorted({c["method"] for c in cells if c.get("benchmark") in benches})
    rows = []
    for m in methods:
        rows.append({"method": m,
                     "pairs": {hard: _pair_entry(cells, m, easy, hard) for easy, hard in PAIRS},
                     "cifar": _cifar_entries(cells, m)})
    return rows


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _seeds(seeds: list[int]) -> str:
    return ",".join(map(str, seeds)) or "-"


def _why_missing(e: dict) -> str:
    """Why a pair has no common seed, in words."""
    parts = []
    for side, name in (("easy", "MNIST"), ("hard", "Fashion-MNIST")):
        if e[f"{side}_problems"] and not e[f"{side}_seeds"]:
            parts.append(f"{name} {', '.join(e[side + '_problems'])}")
        elif not e[f"{side}_seeds"]:
            parts.append(f"{name} not run")
    if not parts:
        parts.append(f"no common seed (MNIST {_seeds(e['easy_seeds'])}, "
                     f"Fashion-MNIST {_seeds(e['hard_seeds'])})")
    return "; ".join(parts)


def render_markdown(rows: list[dict], *, command: str) -> str:
    """The comparison as Markdown: one table per pair, then the CIFAR-10 column."""
    lines = ["# Harder benchmarks: Split MNIST vs Split Fashion-MNIST vs Split CIFAR-10", "",
             f"Made by: `{command}`", "",
             "ACC = final average accuracy over all experiences (%), forgetting = "
             "Avalanche StreamForgetting (%). MNIST and Fashion-MNIST share the protocol "
             "and are compared on the seeds both have (mean over them); gap = MNIST "
             "ACC minus Fashion-MNIST ACC, in points.", ""]
    titles = {"split_fmnist_class": "class-IL", "split_fmnist_task": "task-IL"}
    for _, hard in PAIRS:
        lines += [f"## Split MNIST vs Split Fashion-MNIST, {titles.get(hard, hard)}", "",
                  "| method | seeds | MNIST ACC | Fashion-MNIST ACC | gap | MNIST forgetting | "
                  "Fashion-MNIST forgetting |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            e = r["pairs"][hard]
            if e["seeds"]:
                lines.append(
                    f"| {r['method']} | {_seeds(e['seeds'])} | {_pct(e['acc_easy'])} | "
                    f"{_pct(e['acc_hard'])} | {100 * e['gap']:+.2f} | {_pct(e['fgt_easy'])} | "
                    f"{_pct(e['fgt_hard'])} |")
            elif e["easy_seeds"] or e["hard_seeds"] or e["easy_problems"] or e["hard_problems"]:
                lines.append(f"| {r['method']} | - | {_why_missing(e)} | | | | |")
        lines.append("")
    cif = [(r["method"], c) for r in rows for c in r["cifar"]]
    if cif:
        lines += ["## Split CIFAR-10, class-IL", "",
                  "The MNIST and Fashion-MNIST columns are the same method's class-IL ACC "
                  "over those of the CIFAR-10 seeds they have (in brackets).", "",
                  "| method | data | seeds | ACC | forgetting | Split MNIST ACC | "
                  "Split Fashion-MNIST ACC |",
                  "|---|---|---|---|---|---|---|"]
        for m, c in cif:
            mn = f"{_pct(c['mnist_acc'])} ({_seeds(c['mnist_seeds'])})" if c["mnist_seeds"] else "-"
            fm = f"{_pct(c['fmnist_acc'])} ({_seeds(c['fmnist_seeds'])})" if c["fmnist_seeds"] else "-"
            lines.append(f"| {m} | {c['label']} | {_seeds(c['seeds'])} | {_pct(c['acc'])} | "
                         f"{_pct(c['forgetting'])} | {mn} | {fm} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, help="a table1.py output folder (holds cells/)")
    args = p.parse_args(argv)
    results = Path(args.results)
    if not (results / "cells").is_dir():
        p.error(f"--results: {results} has no cells/ folder (not a table1.py output folder)")
    from avalanche_sparse.io import atomic_write_text
    from reproduce.grid import load_cells

    rows = compare(load_cells(results))
    command = "python reproduce/compare_benchmarks.py " + " ".join(shlex.quote(a) for a in argv)
    md = render_markdown(rows, command=command.strip())
    atomic_write_text(results / "harder_benchmarks.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
