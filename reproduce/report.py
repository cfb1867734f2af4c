"""Aggregate cell results into ``table1.md`` / ``table1.csv``.

Per (method, benchmark): mean and standard deviation over seeds of the final
average accuracy (mean over experiences of the last row of the accuracy
matrix) and of Avalanche's ``StreamForgetting``; the published figure(s) and
source beside ours, from ``reproduce/published.json``. :func:`summary_png`
draws the same table as a bar chart (one panel per benchmark, error bars =
standard deviation over seeds).
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Iterable, Optional

from .presets import GRID_BENCHMARKS

__all__ = ["load_published", "published_for", "aggregate", "render_markdown", "render_csv", "fmt_mean_std",
           "summary_png"]

PUBLISHED_FILE = Path(__file__).with_name("published.json")


def load_published(path: Path = PUBLISHED_FILE) -> dict[tuple[str, str], list[dict]]:
    """(method, benchmark) -> list of published figures."""
    data = json.loads(Path(path).read_text())
    out: dict[tuple[str, str], list[dict]] = {}
    for fig in data["figures"]:
        out.setdefault((fig["method"], fig["benchmark"]), []).append(fig)
    return out


def _mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def aggregate(cells: Iterable[dict]) -> list[dict]:
    """One row per (benchmark, data label, method), in benchmark, label, method order.

    Cells of one benchmark computed on different data (the original CIFAR-10
    files and the JPEG copy: their ``label`` differs) are never averaged
    together: each label gets its own row and table section. Cells that did
    not finish (no label of their own) go with the first label's row.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["benchmark"], c["method"]), []).append(c)
    order = {b: i for i, b in enumerate(GRID_BENCHMARKS)}
    rows = []
    for (bench, method), cs in groups.items():
        ok_all = [c for c in cs if c.get("status") == "ok"]
        default = GRID_BENCHMARKS.get(bench, {}).get("label", bench)
        labels = list(dict.fromkeys(c.get("label") or default for c in ok_all)) or [default]
        other = [c for c in cs if c.get("status") != "ok"]
        for i, label in enumerate(labels):
            ok = [c for c in ok_all if (c.get("label") or default) == label]
            bad = other if i == 0 else []
            acc_m, acc_s = _mean_std([c["avg_acc"] for c in ok])
            fgt = [c["forgetting"] for c in ok if c.get("forgetting") is not None]
            f_m, f_s = _mean_std(fgt)
            n_exp = sorted({int(c["n_experiences"]) for c in ok if c.get("n_experiences")})
            rows.append(dict(
                benchmark=bench, label=label, method=method, n_seeds=len(ok),
                n_experiences=n_exp[0] if len(n_exp) == 1 else None,
                seeds=sorted(c["seed"] for c in ok), acc_mean=acc_m, acc_std=acc_s,
                forgetting_mean=f_m, forgetting_std=f_s,
                problems=sorted({c["status"] for c in bad}),
                errors=[c.get("error", "") for c in bad],
            ))
    rows.sort(key=lambda r: (order.get(r["benchmark"], 99), r["benchmark"],
                             "JPEG copy" in r["label"], r["label"], r["method"]))
    return rows


def fmt_mean_std(mean: Optional[float], std: Optional[float], scale: float = 100.0) -> str:
    """``"97.12 ± 0.31"`` (percent), or ``"-"``."""
    if mean is None:
        return "-"
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def published_for(published: dict, row: dict) -> list[dict]:
    """The published figures that apply to ``row``: those of its (method,
    benchmark) whose ``n_experiences``, where a figure names one, is the
    row's number of experiences (a 2-task figure is not put beside a 10-task
    result)."""
    figs = published.get((row["method"], row["benchmark"]), [])
    n = row.get("n_experiences")
    return [f for f in figs if f.get("n_experiences") is None or f["n_experiences"] == n]


def _published_text(figs: list[dict]) -> tuple[str, str]:
    if not figs:
        return "-", ""
    vals = "; ".join(f"{f['value'] * 100:.2f}" for f in figs)
    srcs = "; ".join(f["source"] for f in figs)
    return vals, srcs


def render_markdown(rows: list[dict], *, preset: str, command: str,
                    published: Optional[dict] = None) -> str:
    """The Markdown table, one section per benchmark."""
    published = load_published() if published is None else published
    lines = [
        f"# Table 1 ({preset} preset)",
        "",
        f"Made by: `{command}`",
        "",
        "ACC = final average accuracy over all experiences (%), forgetting = Avalanche "
        "StreamForgetting (%), mean ± std over seeds. Published figures are other "
        "people's results under their own protocols, shown for comparison only.",
        "",
    ]
    current = None
    for r in rows:
        if r["label"] != current:
            current = r["label"]
            lines += ["", f"## {current}", "",
                      "| method | seeds | ACC (ours) | forgetting (ours) | published ACC | source |",
                      "|---|---|---|---|---|---|"]
        pub, src = _published_text(published_for(published, r))
        acc = fmt_mean_std(r["acc_mean"], r["acc_std"])
        if r["problems"]:
            acc = f"{acc} ({', '.join(r['problems'])})" if r["n_seeds"] else ", ".join(r["problems"])
        lines.append(f"| {r['method']} | {r['n_seeds']} | {acc} | "
                     f"{fmt_mean_std(r['forgetting_mean'], r['forgetting_std'])} | {pub} | {src} |")
    hints = sorted({e for r in rows for e in r["errors"] if e})
    if hints:
        lines += ["", "## Problems", ""] + [f"- {h.splitlines()[0]}" for h in hints]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict], published: Optional[dict] = None) -> str:
    """The same table as CSV (fractions, not percent)."""
    published = load_published() if published is None else published
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["benchmark", "label", "method", "n_seeds", "acc_mean", "acc_std",
                "forgetting_mean", "forgetting_std", "status", "published_acc", "published_source"])
    for r in rows:
        figs = published_for(published, r)
        w.writerow([r["benchmark"], r["label"], r["method"], r["n_seeds"],
                    "" if r["acc_mean"] is None else f"{r['acc_mean']:.6f}",
                    "" if r["acc_std"] is None else f"{r['acc_std']:.6f}",
                    "" if r["forgetting_mean"] is None else f"{r['forgetting_mean']:.6f}",
                    "" if r["forgetting_std"] is None else f"{r['forgetting_std']:.6f}",
                    ";".join(r["problems"]) or "ok",
                    ";".join(str(f["value"]) for f in figs),
                    " | ".join(f["source"] for f in figs)])
    return buf.getvalue()


def summary_png(rows: list[dict], *, title: str = "Table 1", published: Optional[dict] = None) -> bytes:
    """Bar chart of final average accuracy (%) per method, one panel per
    benchmark, error bars = std over seeds; published figures as black ticks.
    Rows without a successful seed show their problem instead of a bar."""
    import io as _io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    published = load_published() if published is None else published
    benches: list[str] = []
    for r in rows:
        if r["benchmark"] not in benches:
            benches.append(r["benchmark"])
    n = max(1, len(benches))
    width = max(3.2, 0.55 * max((sum(r["benchmark"] == b for r in rows) for b in benches), default=1) + 1.2)
    fig, axes = plt.subplots(1, n, figsize=(width * n, 3.6), dpi=90, squeeze=False)
    for ax, bench in zip(axes[0], benches):
        rs = [r for r in rows if r["benchmark"] == bench]
        xs = list(range(len(rs)))
        means = [100 * r["acc_mean"] if r["acc_mean"] is not None else 0.0 for r in rs]
        errs = [100 * r["acc_std"] if r["acc_std"] is not None else 0.0 for r in rs]
        ax.bar(xs, means, yerr=errs, capsize=3, color="tab:blue", alpha=0.8)
        for x, r, m in zip(xs, rs, means):
            if r["n_seeds"] == 0:
                ax.text(x, 2, ", ".join(r["problems"]) or "no result", rotation=90, ha="center",
                        va="bottom", fontsize=7, color="tab:red")
            else:
                ax.text(x, m + 1, f"{m:.1f}\n({r['n_seeds']})", ha="center", va="bottom", fontsize=6)
            for fig_ in published_for(published, r):
                ax.plot([x - 0.4, x + 0.4], [100 * fig_["value"]] * 2, color="black", lw=1)
        ax.set_xticks(xs)
        ax.set_xticklabels([r["method"] for r in rs], rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 115)
        ax.set_title(rs[0]["label"] if rs else bench, fontsize=8)
        ax.set_ylabel("final average accuracy (%)", fontsize=7)
    fig.suptitle(f"{title}: mean ± std over seeds (n); black: published", fontsize=8)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
