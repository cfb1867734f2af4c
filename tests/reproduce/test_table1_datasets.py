"""The Table 1 grid on Split Fashion-MNIST and on the two CIFAR-10 sources.

Synthetic data roots only: which datasets are staged decides what runs; the
CIFAR-10 JPEG copy is always named "CIFAR-10 (JPEG copy)" (cells, table,
TensorBoard) and never averaged with results on the original files.
"""
from __future__ import annotations

import json

import pytest

import avalanche_sparse.strategies as S
import reproduce.table1 as T
from avalanche_sparse.benchmarks import data as D
from reproduce import presets
from reproduce.report import aggregate, render_markdown
from tests.synthetic import write_fake_cifar10_batches, write_fake_cifar10_jpeg, write_fake_mnist

_MLP = {"optimizer": "sgd", "lr": 0.05, "n_experiences": 5, "subsample": None, "train_epochs": 1,
        "train_mb_size": 20, "eval_mb_size": 100, "hidden_sizes": [8]}
TINY = {
    "seeds": [0],
    "benchmarks": {
        "split_mnist_task": dict(_MLP),
        "split_fmnist_class": dict(_MLP),
        "split_fmnist_task": dict(_MLP),
        "split_cifar10_class": {**_MLP, "model": "cnn", "channels": [2, 4], "hidden_size": 8},
    },
}


@pytest.fixture(autouse=True)
def tiny_preset(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tinyd", json.loads(json.dumps(TINY)))


def _mnist(root, fmnist=True):
    write_fake_mnist(root / "mnist" / "MNIST" / "raw", n_train=100, n_test=50, seed=0)
    if fmnist:
        write_fake_mnist(root / "fashionmnist" / "FashionMNIST" / "raw", n_train=100, n_test=50,
                         seed=1)
    return root


def _jpeg(root, tmp_path):
    write_fake_cifar10_jpeg(tmp_path / "jpeg-src", per_class=(4, 2), seed=0)
    D.stage_cifar10_jpeg(root, source=tmp_path / "jpeg-src", tar_sha256=None, labels_sha256=None,
                         progress=False)


def _run(root, out, *extra):
    return T.main(["--preset", "tinyd", "--root", str(root), "--out", str(out), "--no-progress",
                   "--methods", "naive", *extra])


def _cell(out, bench, method="naive"):
    return json.loads((out / "cells" / method / bench / "seed0.json").read_text())


def _tb_bytes(out, bench, method="naive"):
    return b"".join(p.read_bytes() for p in (out / "tb" / method / bench / "seed0").glob("events.*"))


def test_fmnist_benchmarks_follow_the_split_mnist_protocol():
    for kind in ("class", "task"):
        spec = presets.GRID_BENCHMARKS[f"split_fmnist_{kind}"]
        assert spec["builder"] == "split_fmnist" and spec["kwargs"] == {"scenario": kind}
        assert spec["twin"] == f"split_mnist_{kind}" and "Fashion-MNIST" in spec["label"]
        for name in ("quick", "full"):
            bench = presets.get_preset(name)["benchmarks"]
            assert bench[f"split_fmnist_{kind}"] == bench[f"split_mnist_{kind}"]


def test_fmnist_cells_run(tmp_path):
    root, out = _mnist(tmp_path / "root"), tmp_path / "run"
    assert _run(root, out, "--benchmarks", "split_fmnist_class", "split_fmnist_task") == 0
    for kind in ("class", "task"):
        c = _cell(out, f"split_fmnist_{kind}")
        assert c["status"] == "ok" and c["label"] == f"Split Fashion-MNIST ({kind}-IL)"
        assert len(c["acc_matrix"]) == 5 and c["cifar10_source"] is None
        assert f"Split Fashion-MNIST ({kind}-IL)".encode() in _tb_bytes(out, f"split_fmnist_{kind}")
    md = (out / "table1.md").read_text()
    assert "## Split Fashion-MNIST (class-IL)" in md and "## Split Fashion-MNIST (task-IL)" in md


def test_nothing_staged_marks_cells_others_run_exit_zero(tmp_path):
    root, out = _mnist(tmp_path / "root", fmnist=False), tmp_path / "run"
    assert _run(root, out) == 0
    assert _cell(out, "split_mnist_task")["status"] == "ok"
    for bench, hint in (("split_fmnist_class", "fetch fmnist"), ("split_fmnist_task", "fetch fmnist"),
                        ("split_cifar10_class", "fetch cifar10-jpeg")):
        c = _cell(out, bench)
        assert c["status"] == "data not staged" and hint in c["error"]
    md = (out / "table1.md").read_text()
    assert "| naive | 0 | data not staged |" in md
    assert "fetch fmnist --root" in md and "fetch cifar10 --root" in md and "fetch cifar10-jpeg" in md


def test_jpeg_copy_is_named_everywhere(tmp_path):
    root, out = _mnist(tmp_path / "root"), tmp_path / "run"
    _jpeg(root, tmp_path)
    assert _run(root, out, "--benchmarks", "split_cifar10_class") == 0
    c = _cell(out, "split_cifar10_class")
    assert c["status"] == "ok" and c["cifar10_source"] == "jpeg"
    assert "CIFAR-10 (JPEG copy)" in c["label"]
    assert "## Split CIFAR-10 (JPEG copy) (class-IL)" in (out / "table1.md").read_text()
    assert "CIFAR-10 (JPEG copy)" in (out / "table1.csv").read_text()
    assert b"CIFAR-10 (JPEG copy)" in _tb_bytes(out, "split_cifar10_class")


def test_original_files_win_over_the_jpeg_copy(tmp_path):
    root, out = _mnist(tmp_path / "root"), tmp_path / "run"
    _jpeg(root, tmp_path)
    write_fake_cifar10_batches(root / "cifar10", n_per_batch=20, n_test=50, seed=0)
    assert _run(root, out, "--benchmarks", "split_cifar10_class") == 0
    c = _cell(out, "split_cifar10_class")
    assert c["cifar10_source"] == "original" and c["label"] == "Split CIFAR-10 (class-IL)"
    assert "JPEG" not in (out / "table1.md").read_text()
    assert b"JPEG" not in _tb_bytes(out, "split_cifar10_class")


def test_cells_on_different_cifar_sources_are_never_averaged():
    def cell(seed, acc, label, status="ok"):
        return {"method": "naive", "benchmark": "split_cifar10_class", "seed": seed, "status": status,
                "avg_acc": acc, "forgetting": 0.5, "label": label}

    jpeg, orig = "Split CIFAR-10 (JPEG copy) (class-IL)", "Split CIFAR-10 (class-IL)"
    rows = aggregate([cell(0, 0.2, jpeg), cell(1, 0.4, orig), cell(2, 0.3, jpeg),
                      {"method": "naive", "benchmark": "split_cifar10_class", "seed": 3,
                       "status": "failed", "error": "boom"}])
    assert [(r["label"], r["n_seeds"]) for r in rows] == [(orig, 1), (jpeg, 2)]
    assert rows[1]["acc_mean"] == pytest.approx(0.25) and rows[0]["acc_mean"] == pytest.approx(0.4)
    assert sum(len(r["problems"]) for r in rows) == 1
    md = render_markdown(rows, preset="x", command="c", published={})
    assert md.count("## Split CIFAR-10 (JPEG copy) (class-IL)") == 1 and md.count(f"## {orig}") == 1


def test_methods_with_mnist_settings_get_fmnist_cells(tmp_path, monkeypatch):
    m = S.Method(name="mnist_only", description="restricted", model=S.default_model,
                 optimizer=S.default_optimizer, benchmarks=("split_mnist_class",),
                 hparams_by_benchmark={"split_mnist_class": {"hidden_sizes": [3]}})
    monkeypatch.setitem(S.REGISTRY, "mnist_only", m)
    benches = list(presets.GRID_BENCHMARKS)
    cells = T.plan_cells(["mnist_only", "naive"], benches, [0], S.REGISTRY)
    assert {b for meth, b, _ in cells if meth == "mnist_only"} == {"split_mnist_class",
                                                                     "split_fmnist_class"}
    assert {b for meth, b, _ in cells if meth == "naive"} == set(benches)
    # the twin's per-benchmark settings apply to the Fashion-MNIST cell
    root, out = _mnist(tmp_path / "root"), tmp_path / "run"
    monkeypatch.setitem(presets.PRESETS["tinyd"]["benchmarks"], "split_fmnist_class", dict(_MLP))
    assert T.main(["--preset", "tinyd", "--root", str(root), "--out", str(out), "--no-progress",
                   "--methods", "mnist_only", "--benchmarks", "split_fmnist_class"]) == 0
    assert _cell(out, "split_fmnist_class", "mnist_only")["hparams"]["hidden_sizes"] == [3]
    # its own settings win over the twin's
    assert presets.benchmark_twin("split_fmnist_class", {"split_fmnist_class": {}, "split_mnist_class": {}}) \
        == "split_fmnist_class"
    assert presets.benchmark_twin("split_mnist_class", {"split_mnist_class": {}}) == "split_mnist_class"
