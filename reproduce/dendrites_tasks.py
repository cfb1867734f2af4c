"""Active Dendrites on Permuted MNIST: final accuracy against the number of
tasks, ours beside Iyer et al. 2022.

Iyer, Grewal, Velu, Souza, Forest & Ahmad 2022, "Avoiding Catastrophe: Active
Dendrites Enable Multi-Task Learning in Dynamic Environments" (Front.
Neurorobot. 16:846219) report their prototype-context network on 2, 5, 10, 25,
50 and 100 tasks, each count with its own tuned epochs and lr. This script
reads the cells of one method (default ``dendrites``) on ``permuted_mnist`` from
several ``table1.py`` output folders (the full preset holds the 10-task cells,
the ``dendrites_tasks_<n>`` presets the others), groups them by their number of
experiences, and writes a Markdown table and a PNG (accuracy vs number of
tasks, log scale; published figures from ``reproduce/published.json`` matched
by number of tasks), both atomically.

Usage::

    python reproduce/dendrites_tasks.py --results reproduce/results/full \\
        reproduce/results/dendrites_tasks_2 reproduce/results/dendrites_tasks_5 \\
        --out reproduce/results/dendrites_tasks.md
"""
from __future__ import annotations

import argparse
import io
import shlex
import statistics
import sys
from pathlib import Path
from typing import Iterable, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reproduce.report import _mean_std, published_for  # noqa: E402

__all__ = ["collect", "render_markdown", "plot_png", "main"]

BENCHMARK = "permuted_mnist"


def collect(cells: Iterable[dict], method: str = "dendrites") -> list[dict]:
    """One row per number of tasks of ``method``'s Permuted MNIST cells.

    A row has ``n_tasks``, ``seeds``, ``accs`` and ``forgetting`` (fractions,
    finished cells only), ``acc_mean``/``acc_std`` (``None`` without a
    finished cell; std 0 for one seed) and ``problems`` (statuses of the
    unfinished cells). A seed found in two folders for the same task count
    is an error: the folders overlap and would be averaged twice.
    """
    groups: dict[int, dict] = {}
    for c in cells:
        if c.get("method") != method or c.get("benchmark") != BENCHMARK or not c.get("n_experiences"):
            continue
        g = groups.setdefault(int(c["n_experiences"]), {"ok": {}, "problems": set()})
        if c.get("status") == "ok" and c.get("avg_acc") is not None:
            if c["seed"] in g["ok"]:
                raise ValueError(f"{method}: seed {c['seed']} with {c['n_experiences']} tasks appears "
                                 f"twice; pass each table1.py output folder once")
            g["ok"][c["seed"]] = c
        else:
            g["problems"].add(str(c.get("status")))
    rows = []
    for n in sorted(groups):
        ok = groups[n]["ok"]
        seeds = sorted(ok)
        accs = [float(ok[s]["avg_acc"]) for s in seeds]
        fgt = [float(ok[s]["forgetting"]) for s in seeds if ok[s].get("forgetting") is not None]
        acc_mean, acc_std = _mean_std(accs)
        rows.append({
            "n_tasks": n, "seeds": seeds, "accs": accs, "forgetting": fgt,
            "acc_mean": acc_mean, "acc_std": acc_std, "problems": sorted(groups[n]["problems"]),
        })
    return rows


def _published(published: dict, method: str, n: int) -> list[dict]:
    return published_for(published, {"method": method, "benchmark": BENCHMARK, "n_experiences": n})


def render_markdown(rows: list[dict], *, method: str, published: dict, command: str) -> str:
    """The table: one line per number of tasks with a result or a published figure."""
    counts = sorted({r["n_tasks"] for r in rows}
                    | {int(f["n_experiences"]) for f in published.get((method, BENCHMARK), [])
                       if f.get("n_experiences")})
    by_n = {r["n_tasks"]: r for r in rows}
    lines = [
        f"# `{method}` on Permuted MNIST: accuracy vs number of tasks",
        "",
        f"Made by: `{command}`",
        "",
        "ACC = final average accuracy over all tasks (%), mean ± std over seeds (each seed's "
        "value in brackets); forgetting = Avalanche StreamForgetting (%), mean. The published "
        "figure is Iyer et al. 2022's mean of 8 runs under their own code, shown for comparison "
        "only; our minus theirs in the last column.",
        "",
        "| tasks | seeds | ACC (ours) | forgetting (ours) | published ACC | ours - published |",
        "|---|---|---|---|---|---|",
    ]
    for n in counts:
        r = by_n.get(n)
        pub = _published(published, method, n)
        pub_txt = "; ".join(f"{100 * f['value']:.2f}" for f in pub) or "-"
        if r is None or r["acc_mean"] is None:
            acc, fgt, diff = (", ".join(r["problems"]) if r else "not run"), "-", "-"
            seeds = 0
        else:
            each = ", ".join(f"{100 * a:.2f}" for a in r["accs"])
            acc = f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f} ({each})"
            if r["problems"]:
                acc += f"; also {', '.join(r['problems'])}"
            fgt = f"{100 * statistics.fmean(r['forgetting']):.2f}" if r["forgetting"] else "-"
            diff = f"{100 * (r['acc_mean'] - pub[0]['value']):+.2f}" if pub else "-"
            seeds = len(r["seeds"])
        lines.append(f"| {n} | {seeds} | {acc} | {fgt} | {pub_txt} | {diff} |")
    sources = list(dict.fromkeys(f["source"] for n in counts for f in _published(published, method, n)))
    if sources:
        lines += ["", "Published figures:", ""] + [f"- {s}" for s in sources]
    return "\n".join(lines) + "\n"


def plot_png(rows: list[dict], *, method: str, published: dict) -> bytes:
    """Accuracy (%) vs number of tasks (log x): ours with std error bars, the published curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2), dpi=100)
    done = [r for r in rows if r["acc_mean"] is not None]
    if done:
        ax.errorbar([r["n_tasks"] for r in done], [100 * r["acc_mean"] for r in done],
                    yerr=[100 * r["acc_std"] for r in done], fmt="-s", capsize=3,
                    label=f"ours ({method}, seeds per point: "
                          f"{', '.join(str(len(r['seeds'])) for r in done)})")
    pub = sorted((int(f["n_experiences"]), 100 * f["value"])
                 for f in published.get((method, BENCHMARK), []) if f.get("n_experiences"))
    if pub:
        ax.plot([p[0] for p in pub], [p[1] for p in pub], "--o", color="black", lw=1,
                label="Iyer et al. 2022 (mean of 8 runs)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ticks = sorted({r["n_tasks"] for r in done} | {p[0] for p in pub})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("number of Permuted MNIST tasks", fontsize=8)
    ax.set_ylabel("final average accuracy (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="lower left")
    ax.set_title("Active Dendrites: accuracy vs number of tasks", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def main(argv: Optional[list] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", nargs="+", required=True,
                   help="table1.py output folders (each holds cells/)")
    p.add_argument("--method", default="dendrites", help="registered method name (default dendrites)")
    p.add_argument("--out", required=True, help="the Markdown file to write; the PNG goes beside it")
    args = p.parse_args(argv)
    folders = [Path(r) for r in args.results]
    for f in folders:
        if not (f / "cells").is_dir():
            p.error(f"--results: {f} has no cells/ folder (not a table1.py output folder)")
    if len(set(f.resolve() for f in folders)) != len(folders):
        p.error("--results: a folder is named twice")
    import avalanche_sparse.strategies as strategies

    if args.method not in strategies.available_methods():
        p.error(f"--method: unknown {args.method!r}; valid: {', '.join(strategies.available_methods())}")
    out = Path(args.out)
    if out.suffix != ".md":
        p.error(f"--out: must name a .md file, got {out}")
    from avalanche_sparse.io import atomic_write_bytes, atomic_write_text
    from reproduce.grid import load_cells
    from reproduce.report import load_published

    cells = [c for f in folders for c in load_cells(f)]
    try:
        rows = collect(cells, args.method)
    except ValueError as err:
        p.error(str(err))
    if not rows:
        p.error(f"--results: no {args.method} cells on {BENCHMARK} in {', '.join(map(str, folders))}")
    published = load_published()
    command = "python reproduce/dendrites_tasks.py " + " ".join(shlex.quote(a) for a in argv)
    md = render_markdown(rows, method=args.method, published=published, command=command.strip())
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, md)
    atomic_write_bytes(out.with_suffix(".png"), plot_png(rows, method=args.method, published=published))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
