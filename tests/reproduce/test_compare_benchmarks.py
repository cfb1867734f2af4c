"""reproduce/compare_benchmarks.py: MNIST vs its Fashion-MNIST twin, seed for seed, and CIFAR-10."""
from __future__ import annotations

import json

import pytest

from reproduce.compare_benchmarks import compare, main, render_markdown


def _cell(method, bench, seed, acc, fgt=0.5, status="ok", label=None):
    return {"method": method, "benchmark": bench, "seed": seed, "status": status,
            "avg_acc": acc, "forgetting": fgt, "label": label or bench}


def test_pairs_use_only_common_seeds_and_gap_is_easy_minus_hard():
    cells = [_cell("naive", "split_mnist_task", s, a) for s, a in [(0, 0.9), (1, 0.7), (2, 0.1)]]
    cells += [_cell("naive", "split_fmnist_task", s, a) for s, a in [(0, 0.8), (1, 0.6)]]
    (row,) = compare(cells)
    e = row["pairs"]["split_fmnist_task"]
    assert e["seeds"] == [0, 1]                       # seed 2 exists on MNIST only
    assert e["acc_easy"] == pytest.approx(0.8) and e["acc_hard"] == pytest.approx(0.7)
    assert e["gap"] == pytest.approx(0.1)
    md = render_markdown([row], command="x")
    assert "| naive | 0,1 | 80.00 | 70.00 | +10.00 | 50.00 | 50.00 |" in md


def test_failed_twin_is_shown_and_cifar_keeps_its_data_label():
    cells = [_cell("dense_mlp", "split_mnist_class", 0, None, status="failed"),
             _cell("dense_mlp", "split_fmnist_class", 0, None, status="failed"),
             _cell("naive", "split_mnist_class", 0, 0.2),
             _cell("naive", "split_fmnist_class", 0, 0.19),
             _cell("naive", "split_cifar10_class", 0, 0.18, label="Split CIFAR-10 (JPEG copy)"),
             _cell("naive", "split_cifar10_class", 1, 0.16, label="Split CIFAR-10 (JPEG copy)")]
    rows = {r["method"]: r for r in compare(cells)}
    assert rows["dense_mlp"]["pairs"]["split_fmnist_class"]["hard_problems"] == ["failed"]
    (c,) = rows["naive"]["cifar"]
    assert c["seeds"] == [0, 1] and c["acc"] == pytest.approx(0.17)
    assert c["mnist_acc"] == pytest.approx(0.2) and c["mnist_seeds"] == [0]   # MNIST has seed 0 only
    md = render_markdown(list(rows.values()), command="x")
    assert "| dense_mlp | - | MNIST failed; Fashion-MNIST failed |" in md
    assert "| naive | Split CIFAR-10 (JPEG copy) | 0,1 | 17.00 | 50.00 | 20.00 (0) | 19.00 (0) |" in md


def test_cifar_sources_are_never_averaged_and_missing_pairs_say_why():
    cells = [_cell("naive", "split_cifar10_class", 0, 0.30, label="Split CIFAR-10"),
             _cell("naive", "split_cifar10_class", 1, 0.10, label="Split CIFAR-10 (JPEG copy)"),
             _cell("naive", "split_mnist_task", 0, 0.9),
             _cell("naive", "split_fmnist_task", 1, 0.8),
             _cell("ewc", "split_mnist_task", 0, 0.9),
             _cell("ewc", "split_fmnist_task", 0, None, status="data not staged")]
    rows = {r["method"]: r for r in compare(cells)}
    accs = {c["label"]: c["acc"] for c in rows["naive"]["cifar"]}
    assert accs == {"Split CIFAR-10": pytest.approx(0.30), "Split CIFAR-10 (JPEG copy)": pytest.approx(0.10)}
    md = render_markdown(list(rows.values()), command="x")
    assert "| naive | - | no common seed (MNIST 0, Fashion-MNIST 1) |" in md
    assert "| ewc | - | Fashion-MNIST data not staged |" in md


def test_main_writes_the_table_and_rejects_a_folder_without_cells(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--results", str(tmp_path)])
    assert "--results" in capsys.readouterr().err
    for c in [_cell("ewc", "split_mnist_class", 0, 0.3), _cell("ewc", "split_fmnist_class", 0, 0.25)]:
        p = tmp_path / "cells" / c["method"] / c["benchmark"] / "seed0.json"
        p.parent.mkdir(parents=True)
        p.write_text(json.dumps(c))
    (tmp_path / "cells" / "ewc" / "split_mnist_class" / "seed1.json").write_text("{truncated")
    assert main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "harder_benchmarks.md").read_text()
    assert "| ewc | 0 | 30.00 | 25.00 | +5.00 |" in text
