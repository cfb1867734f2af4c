"""reproduce/dendrites_tasks.py: accuracy vs number of tasks from table1 output folders."""
from __future__ import annotations

import json

import pytest

from reproduce import dendrites_tasks as D


def _write(folder, seed, n, acc, status="ok", method="dendrites", bench="permuted_mnist"):
    p = folder / "cells" / method / bench / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"method": method, "benchmark": bench, "seed": seed, "status": status,
                             "n_experiences": n, "avg_acc": acc if status == "ok" else None,
                             "forgetting": 0.02 if status == "ok" else None}))


@pytest.fixture
def folders(tmp_path):
    full, two = tmp_path / "full", tmp_path / "t2"
    for s, a in enumerate([0.95, 0.94, 0.96]):
        _write(full, s, 10, a)
    _write(full, 0, 10, 0.5, method="naive")           # another method: ignored
    _write(full, 0, 10, 0.5, bench="split_mnist_task")  # another benchmark: ignored
    _write(two, 0, 2, 0.98)
    _write(two, 1, 2, 0.97)
    _write(two, 2, 2, None, status="failed")
    return full, two


def test_rows_group_by_task_count(folders):
    from reproduce.grid import load_cells

    rows = D.collect([c for f in folders for c in load_cells(f)])
    assert [r["n_tasks"] for r in rows] == [2, 10]
    two, ten = rows
    assert two["seeds"] == [0, 1] and two["acc_mean"] == pytest.approx(0.975) and two["problems"] == ["failed"]
    assert ten["acc_mean"] == pytest.approx(0.95) and ten["acc_std"] == pytest.approx(0.01)


def test_table_and_plot_with_published_beside(folders, tmp_path):
    out = tmp_path / "res" / "dendrites_tasks.md"
    assert D.main(["--results", *map(str, folders), "--out", str(out)]) == 0
    md = out.read_text()
    lines = {ln.split(" | ")[0]: ln for ln in md.splitlines() if ln.startswith("| ")}
    # ours vs the published.json figure for the same number of tasks
    assert lines["| 2"].startswith("| 2 | 2 | 97.50 ± 0.71 (98.00, 97.00); also failed | 2.00 | 97.47 | +0.03 |")
    assert "| 10 | 3 | 95.00 ± 1.00 (95.00, 94.00, 96.00) | 2.00 | 94.55 | +0.45 |" in md
    assert "| 25 | 0 | not run | - | 92.09 | - |" in md  # a published count we did not run
    assert "Made by: `python reproduce/dendrites_tasks.py --results" in md
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments(folders, tmp_path, capsys):
    full, two = folders
    out = str(tmp_path / "x.md")
    with pytest.raises(SystemExit):
        D.main(["--results", str(tmp_path / "nope"), "--out", out])
    assert "has no cells/ folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        D.main(["--results", str(full), str(full), "--out", out])
    assert "named twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        D.main(["--results", str(full), "--method", "bogus", "--out", out])
    assert "--method: unknown 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        D.main(["--results", str(full), "--out", str(tmp_path / "x.txt")])
    assert "must name a .md file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        D.main(["--results", str(full), "--method", "ewc", "--out", out])
    assert "no ewc cells on permuted_mnist" in capsys.readouterr().err
    # the same seed and task count in two folders would be averaged twice
    dup = tmp_path / "dup"
    _write(dup, 0, 2, 0.9)
    with pytest.raises(SystemExit):
        D.main(["--results", str(two), str(dup), "--out", out])
    assert "seed 0 with 2 tasks appears twice" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()
