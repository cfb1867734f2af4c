"""The Table 1 grid: results, resume, determinism, failures and bad input."""
from __future__ import annotations

import json

import pytest
import torch

import avalanche_sparse.strategies as S
import reproduce.table1 as T
from reproduce import presets

TINY = {
    "seeds": [0],
    "benchmarks": {
        "permuted_mnist": {"optimizer": "sgd", "lr": 0.05, "n_experiences": 2, "subsample": None,
                           "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100,
                           "hidden_sizes": [16]},
        "split_mnist_task": {"optimizer": "sgd", "lr": 0.05, "n_experiences": 5, "subsample": None,
                             "train_epochs": 1, "train_mb_size": 20, "eval_mb_size": 100,
                             "hidden_sizes": [16]},
        "split_cifar10_class": {"optimizer": "sgd", "lr": 0.05, "n_experiences": 5,
                                "subsample": None, "train_epochs": 1, "train_mb_size": 20,
                                "eval_mb_size": 100, "model": "cnn", "channels": [2, 4],
                                "hidden_size": 8},
    },
}


@pytest.fixture(autouse=True)
def tiny_preset(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tiny", json.loads(json.dumps(TINY)))
    monkeypatch.setitem(presets.PRESETS, "tiny2", {**json.loads(json.dumps(TINY)), "seeds": [0]})
    presets.PRESETS["tiny2"]["benchmarks"]["permuted_mnist"]["lr"] = 0.01


def _run(root, out, *extra):
    return T.main(["--preset", "tiny", "--root", str(root), "--out", str(out), "--no-progress", *extra])


def _cells(out):
    return {p.relative_to(out).as_posix(): json.loads(p.read_text())
            for p in sorted(out.glob("cells/*/*/seed*.json"))}


def test_grid_writes_cells_table_plots_and_tensorboard(data_root, tmp_path):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "ewc") == 0
    cells = _cells(out)
    assert len(cells) == 6 and all(c["status"] == "ok" for c in cells.values())
    c = cells["cells/naive/split_mnist_task/seed0.json"]
    assert len(c["acc_matrix"]) == 5 and all(len(r) == 5 for r in c["acc_matrix"])
    assert c["avg_acc"] == pytest.approx(sum(c["acc_matrix"][-1]) / 5)
    assert 0.0 <= c["avg_acc"] <= 1.0 and c["forgetting"] is not None
    assert c["label"] == "Split MNIST (task-IL)"
    md = (out / "table1.md").read_text()
    assert "## Split MNIST (task-IL)" in md and "| naive | 1 |" in md
    assert "Made by: `python reproduce/table1.py --preset tiny" in md
    csv = (out / "table1.csv").read_text().splitlines()
    assert csv[0].startswith("benchmark,label,method") and len(csv) == 7
    assert (out / "plots" / "naive__split_mnist_task__seed0.png").stat().st_size > 1000
    for m in ("naive", "ewc"):  # tensorboard --logdir OUT/tb: every cell, plus the summary
        for b in ("permuted_mnist", "split_mnist_task", "split_cifar10_class"):
            assert list((out / "tb" / m / b / "seed0").glob("events.out.tfevents.*")), (m, b)
    assert len(list((out / "tb" / "summary").glob("events.out.tfevents.*"))) == 1
    assert (out / "table1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_skips_finished_cells_and_gives_same_table(data_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task", "permuted_mnist") == 0
    first = _cells(out)
    table = (out / "table1.csv").read_text()
    # simulate a crash that lost one cell: it alone is recomputed
    (out / "cells/naive/permuted_mnist/seed0.json").unlink()
    import reproduce.grid as G

    calls = []
    real = G.run_cell
    monkeypatch.setattr(G, "run_cell", lambda *a, **k: calls.append(a[:3]) or real(*a, **k))
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task", "permuted_mnist") == 0
    assert calls == [("naive", "permuted_mnist", 0)]
    again = _cells(out)
    for key in first:
        assert again[key]["acc_matrix"] == first[key]["acc_matrix"]
    assert (out / "table1.csv").read_text() == table
    calls.clear()
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task", "permuted_mnist") == 0
    assert calls == []


def test_same_seed_same_numbers(data_root, tmp_path):
    for name in ("a", "b"):
        assert _run(data_root, tmp_path / name, "--methods", "ewc", "--benchmarks", "permuted_mnist") == 0
    a = _cells(tmp_path / "a")["cells/ewc/permuted_mnist/seed0.json"]
    b = _cells(tmp_path / "b")["cells/ewc/permuted_mnist/seed0.json"]
    for key in ("acc_matrix", "avg_acc", "stream_acc", "forgetting", "bwt", "hparams"):
        assert a[key] == b[key], key  # bit-identical: floats compared with ==
    assert _run(data_root, tmp_path / "c", "--methods", "ewc", "--benchmarks", "permuted_mnist",
                "--seeds", "1") == 0
    c = _cells(tmp_path / "c")["cells/ewc/permuted_mnist/seed1.json"]
    assert c["acc_matrix"] != a["acc_matrix"]


def test_failed_cell_is_recorded_and_grid_goes_on(data_root, tmp_path, monkeypatch):
    class NaNNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.lin(x.flatten(1)) * float("nan")

    bad = S.Method(name="nan_method", description="always NaN", model=lambda ctx: NaNNet(),
                   optimizer=S.default_optimizer)
    monkeypatch.setitem(S.REGISTRY, "nan_method", bad)
    out = tmp_path / "run"
    rc = _run(data_root, out, "--methods", "nan_method", "naive", "--benchmarks", "permuted_mnist")
    assert rc == 1
    cells = _cells(out)
    failed = cells["cells/nan_method/permuted_mnist/seed0.json"]
    assert failed["status"] == "failed"
    assert "non-finite loss" in failed["error"] and "iteration 1" in failed["error"]
    assert cells["cells/naive/permuted_mnist/seed0.json"]["status"] == "ok"
    md = (out / "table1.md").read_text()
    assert "| nan_method | 0 | failed |" in md


def test_cifar_not_staged_marks_cells_and_exits_zero(mnist_only_root, tmp_path):
    out = tmp_path / "run"
    rc = _run(mnist_only_root, out, "--methods", "naive", "--benchmarks", "split_cifar10_class",
              "split_mnist_task")
    assert rc == 0
    cells = _cells(out)
    assert cells["cells/naive/split_cifar10_class/seed0.json"]["status"] == "data not staged"
    assert cells["cells/naive/split_mnist_task/seed0.json"]["status"] == "ok"
    md = (out / "table1.md").read_text()
    assert "data not staged" in md and "avalanche_sparse.benchmarks.data fetch" in md


def _main(preset, root, out, *extra):
    return T.main(["--preset", preset, "--root", str(root), "--out", str(out), "--no-progress", *extra])


def test_output_dir_with_another_protocol_is_refused(data_root, tmp_path):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist") == 0
    # tiny2 changes permuted_mnist's lr: its finished results would be mixed
    with pytest.raises(SystemExit, match="preset 'tiny' whose protocol for permuted_mnist differs.*--force"):
        _main("tiny2", data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist")
    # ... even when this run only touches another benchmark (the table shows them all)
    with pytest.raises(SystemExit, match="permuted_mnist differs"):
        _main("tiny2", data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task")
    assert _main("tiny2", data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist", "--force") == 0
    rec = json.loads((out / "run.json").read_text())
    assert rec["benchmarks"]["permuted_mnist"] == T.protocol_fingerprint(
        presets.PRESETS["tiny2"]["benchmarks"]["permuted_mnist"])


def test_unchanged_benchmarks_stay_usable_when_the_preset_grows(data_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist") == 0
    # a benchmark and a method added to the preset: finished cells are kept and reused
    grown = json.loads(json.dumps(TINY))
    grown["benchmarks"]["split_mnist_class"] = dict(grown["benchmarks"]["permuted_mnist"], n_experiences=2)
    monkeypatch.setitem(presets.PRESETS, "tiny", grown)
    monkeypatch.setitem(S.REGISTRY, "naive2", S.REGISTRY["naive"])
    before = (out / "cells/naive/permuted_mnist/seed0.json").read_text()
    assert _run(data_root, out, "--methods", "naive", "naive2",
                "--benchmarks", "permuted_mnist", "split_mnist_class") == 0
    assert (out / "cells/naive/permuted_mnist/seed0.json").read_text() == before
    assert len(list(out.glob("cells/*/*/seed0.json"))) == 4
    rec = json.loads((out / "run.json").read_text())
    assert set(rec["benchmarks"]) >= {"split_mnist_task", "split_mnist_class", "permuted_mnist"}


@pytest.mark.parametrize("changed,refused", [(False, False), (True, True)])
def test_old_run_json_format_is_read(data_root, tmp_path, changed, refused):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task") == 0
    # the first format: preset name + one fingerprint over the whole preset
    (out / "run.json").write_text(json.dumps({"preset": "tiny", "fingerprint": "0123456789abcdef"}))
    if changed:
        presets.PRESETS["tiny2"]["benchmarks"]["split_mnist_task"]["lr"] = 0.2
    if refused:
        with pytest.raises(SystemExit, match="split_mnist_task differs"):
            _main("tiny2", data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task")
    else:
        assert _main("tiny2", data_root, out, "--methods", "naive", "--benchmarks", "split_mnist_task") == 0
        assert json.loads((out / "run.json").read_text())["format"] == 2


def test_committed_full_results_match_the_full_preset(tmp_path):
    import shutil
    from pathlib import Path

    committed = Path(T.__file__).parent / "results" / "full"
    if not (committed / "cells").is_dir():
        pytest.skip("no committed full results")
    out = tmp_path / "full"
    shutil.copytree(committed / "cells", out / "cells")
    if (committed / "run.json").exists():
        shutil.copy(committed / "run.json", out / "run.json")
    T.check_out_dir(out, "full", presets.get_preset("full"), force=False)


@pytest.mark.parametrize("args,match", [
    (["--methods", "bogus"], r"unknown method\(s\) \['bogus'\]; valid methods: .*naive"),
    (["--benchmarks", "mnist"], r"unknown benchmark\(s\) \['mnist'\]; valid benchmarks: permuted_mnist"),
    (["--preset", "huge"], "unknown preset 'huge'; valid presets: .*quick"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--seeds", "-1"], "--seeds must be non-negative"),
])
def test_bad_cli_arguments(data_root, tmp_path, args, match):
    argv = ["--preset", "tiny", "--root", str(data_root), "--out", str(tmp_path / "o"), *args]
    if "--preset" in args[:1]:
        argv = argv[2:]
    with pytest.raises(SystemExit, match=match):
        T.main(argv)


def test_list_prints_registry(capsys):
    assert T.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("naive", "ewc", "si", "joint", "split_cifar10_class", "quick"):
        assert name in out


def test_quick_preset_covers_every_method_and_benchmark():
    quick = presets.get_preset("quick")
    assert set(quick["benchmarks"]) == set(presets.GRID_BENCHMARKS)
    cells = T.plan_cells(S.available_methods(), list(quick["benchmarks"]), quick["seeds"], S.REGISTRY)
    # every method runs on every grid benchmark it applies to (Method.benchmarks,
    # a Fashion-MNIST benchmark counting as its Split MNIST twin)
    expected = {(m, b) for m, meth in S.REGISTRY.items() for b in presets.GRID_BENCHMARKS
                if meth.benchmarks is None or presets.benchmark_twin(b, meth.benchmarks) in meth.benchmarks}
    assert {(m, b) for m, b, _ in cells} == expected
    assert {m for m, _, _ in cells} == set(S.available_methods())


def test_parallel_workers_give_same_results(data_root, tmp_path):
    assert _run(data_root, tmp_path / "serial", "--methods", "naive", "--benchmarks", "split_mnist_task") == 0
    assert _run(data_root, tmp_path / "par", "--methods", "naive", "--benchmarks", "split_mnist_task",
                "--workers", "2") == 0
    a = _cells(tmp_path / "serial")["cells/naive/split_mnist_task/seed0.json"]
    b = _cells(tmp_path / "par")["cells/naive/split_mnist_task/seed0.json"]
    assert a["acc_matrix"] == b["acc_matrix"]


def test_preset_default_methods_and_label(data_root, tmp_path, monkeypatch):
    preset = {"seeds": [0], "methods": ["naive"],
              "benchmarks": {"permuted_mnist": {**TINY["benchmarks"]["permuted_mnist"],
                                                "label": "Permuted MNIST, 2 tasks (domain-IL)"}}}
    monkeypatch.setitem(presets.PRESETS, "tiny_tasks", preset)
    out = tmp_path / "run"
    assert T.main(["--preset", "tiny_tasks", "--root", str(data_root), "--out", str(out), "--no-progress"]) == 0
    cells = _cells(out)
    assert list(cells) == ["cells/naive/permuted_mnist/seed0.json"]  # not every method: the preset's
    c = cells["cells/naive/permuted_mnist/seed0.json"]
    assert c["label"] == "Permuted MNIST, 2 tasks (domain-IL)" and c["n_experiences"] == 2
    assert "## Permuted MNIST, 2 tasks (domain-IL)" in (out / "table1.md").read_text()
    # --methods still wins over the preset's default
    assert T.main(["--preset", "tiny_tasks", "--root", str(data_root), "--out", str(out), "--no-progress",
                   "--methods", "ewc"]) == 0
    assert "cells/ewc/permuted_mnist/seed0.json" in _cells(out)


@pytest.mark.parametrize("n", [2, 5, 25])
def test_dendrites_task_count_presets(n):
    full = presets.get_preset("full")["benchmarks"]["permuted_mnist"]
    p = presets.get_preset(f"dendrites_tasks_{n}")
    assert p["methods"] == ["dendrites"] and list(p["benchmarks"]) == ["permuted_mnist"]
    proto = dict(p["benchmarks"]["permuted_mnist"])
    assert proto.pop("n_experiences") == n and proto.pop("label") == f"Permuted MNIST, {n} tasks (domain-IL)"
    assert proto == {k: v for k, v in full.items() if k != "n_experiences"}
