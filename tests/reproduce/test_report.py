"""Table rendering from cell results."""
from __future__ import annotations

import pytest

from reproduce.report import aggregate, fmt_mean_std, render_csv, render_markdown, summary_png


def _cell(method, bench, seed, acc, fgt=0.1, status="ok"):
    return {"method": method, "benchmark": bench, "seed": seed, "status": status,
            "avg_acc": acc, "forgetting": fgt, "label": bench}


def test_mean_and_std_over_seeds():
    rows = aggregate([_cell("naive", "split_mnist_task", s, a) for s, a in enumerate([0.8, 0.9, 1.0])])
    (r,) = rows
    assert r["n_seeds"] == 3 and r["acc_mean"] == pytest.approx(0.9)
    assert r["acc_std"] == pytest.approx(0.1)
    assert fmt_mean_std(r["acc_mean"], r["acc_std"]) == "90.00 ± 10.00"


def test_published_column_and_failures():
    pub = {("si", "split_mnist_task"): [{"value": 0.97, "source": "CLB"}]}
    cells = [_cell("si", "split_mnist_task", 0, 0.95),
             _cell("si", "split_mnist_task", 1, None, status="failed") | {"error": "boom"}]
    rows = aggregate(cells)
    md = render_markdown(rows, preset="quick", command="python reproduce/table1.py", published=pub)
    assert "| si | 1 | 95.00 ± 0.00 (failed) |" in md and "| 97.00 | CLB |" in md
    assert "- boom" in md
    csv = render_csv(rows, published=pub)
    assert "failed" in csv and "0.97" in csv


def test_benchmarks_are_ordered_as_in_the_grid():
    rows = aggregate([_cell("naive", "split_cifar10_class", 0, 0.2), _cell("naive", "permuted_mnist", 0, 0.8)])
    assert [r["benchmark"] for r in rows] == ["permuted_mnist", "split_cifar10_class"]


def test_summary_png_has_a_panel_per_benchmark_and_shows_failures():
    import io

    from PIL import Image

    cells = [_cell("naive", "split_mnist_task", s, a) for s, a in enumerate([0.8, 0.9])]
    cells += [_cell("ewc", "split_mnist_task", 0, None, status="failed"),
              _cell("naive", "permuted_mnist", 0, 0.5)]
    rows = aggregate(cells)
    one = Image.open(io.BytesIO(summary_png(rows[:1], published={})))
    two = Image.open(io.BytesIO(summary_png(rows, published={})))
    assert two.size[0] > one.size[0] and two.size[1] == one.size[1]


def test_published_figure_with_a_task_count_only_beside_that_count():
    from reproduce.report import published_for

    pub = {("dendrites", "permuted_mnist"): [
        {"value": 0.9455, "source": "ten", "n_experiences": 10},
        {"value": 0.9747, "source": "two", "n_experiences": 2},
        {"value": 0.5, "source": "any"}]}
    cells = [_cell("dendrites", "permuted_mnist", 0, 0.97) | {"n_experiences": 2, "label": "two tasks"},
             _cell("dendrites", "permuted_mnist", 0, 0.95) | {"n_experiences": 10, "label": "ten tasks"},
             _cell("dendrites", "permuted_mnist", 0, 0.6) | {"n_experiences": 3, "label": "three tasks"}]
    rows = {r["n_experiences"]: r for r in aggregate(cells)}
    assert [f["source"] for f in published_for(pub, rows[2])] == ["two", "any"]
    assert [f["source"] for f in published_for(pub, rows[10])] == ["ten", "any"]
    assert [f["source"] for f in published_for(pub, rows[3])] == ["any"]
    md = render_markdown(list(rows.values()), preset="x", command="c", published=pub)
    sections = {sec.splitlines()[0]: sec for sec in md.split("\n## ")[1:]}
    two = sections["two tasks"]
    assert "| 97.47; 50.00 | two; any |" in two and "94.55" not in two
    assert "0.9455" not in render_csv([rows[2]], published=pub)
