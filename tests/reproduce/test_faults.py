"""Fault tests of the Table 1 grid: killed workers, unwritable output, NaN losses.

The grid runs on a tiny synthetic data root (``data_root``); the kill test
runs it as a subprocess (``grid_runner.py``) with two local workers.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

import avalanche_sparse.strategies as S
import reproduce.table1 as T
from reproduce import presets

HERE = Path(__file__).resolve().parent
TINY = {
    "seeds": [0],
    "benchmarks": {
        "permuted_mnist": {"optimizer": "sgd", "lr": 0.05, "n_experiences": 2, "subsample": None,
                           "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100,
                           "hidden_sizes": [16]},
        "split_mnist_task": {"optimizer": "adam", "lr": 0.01, "n_experiences": 5, "subsample": None,
                             "train_epochs": 1, "train_mb_size": 20, "eval_mb_size": 100,
                             "hidden_sizes": [16]},
    },
}
SAME = ("acc_matrix", "avg_acc", "stream_acc", "forgetting", "bwt")


@pytest.fixture(autouse=True)
def tiny_preset(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tiny", json.loads(json.dumps(TINY)))


def _run(root, out, *extra):
    return T.main(["--preset", "tiny", "--root", str(root), "--out", str(out), "--no-progress", *extra])


def _cell(out, m, b):
    return json.loads((Path(out) / "cells" / m / b / "seed0.json").read_text())


def _leftovers(out):
    return [p for p in Path(out).rglob("*") if p.name.endswith(".tmp")]


def test_kill_9_of_a_worker_mid_cell_then_resume(data_root, tmp_path):
    import tests.reproduce.grid_runner  # noqa: F401  (registers naive_blocking here too)

    out, block = tmp_path / "run", tmp_path / "block"
    block.write_text("")
    args = ["--preset", "tiny", "--root", str(data_root), "--out", str(out), "--no-progress",
            "--methods", "naive_blocking", "naive", "--benchmarks", "split_mnist_task", "--workers", "2"]
    env = dict(os.environ, GRID_BLOCK_FILE=str(block), PYTHONPATH=str(HERE.parents[1]))
    proc = subprocess.Popen([sys.executable, str(HERE / "grid_runner.py"), json.dumps(TINY), "--", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        reached, finished = Path(str(block) + ".reached"), out / "cells/naive/split_mnist_task/seed0.json"
        deadline = time.time() + 240
        while not (reached.exists() and finished.exists()) and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        assert reached.exists() and finished.exists(), "the grid did not reach the kill point"
        ck = out / "checkpoints/naive_blocking/split_mnist_task/seed0.pt"
        assert ck.exists()  # experience 0 is saved before experience 1 starts
        os.kill(int(reached.read_text()), signal.SIGKILL)
        log, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, log
    killed = _cell(out, "naive_blocking", "split_mnist_task")
    assert killed["status"] == "failed" and "SIGKILL" in killed["error"] and "re-run to resume" in killed["error"]
    assert "naive_blocking" in (out / "table1.md").read_text()
    finished_before = _cell(out, "naive", "split_mnist_task")
    assert finished_before["status"] == "ok" and ck.exists(), finished_before.get("error")

    block.unlink()  # resume: the killed cell continues after experience 0, the finished one is kept
    assert _run(data_root, out, "--methods", "naive_blocking", "naive", "--benchmarks", "split_mnist_task") == 0
    resumed = _cell(out, "naive_blocking", "split_mnist_task")
    assert resumed["status"] == "ok" and resumed["resumed_after_experience"] == 1
    assert _cell(out, "naive", "split_mnist_task") == finished_before
    assert not ck.exists() and not (out / "checkpoints").exists()
    # the uninterrupted run gives exactly the same numbers
    assert _run(data_root, tmp_path / "ref", "--methods", "naive_blocking", "--benchmarks", "split_mnist_task") == 0
    ref = _cell(tmp_path / "ref", "naive_blocking", "split_mnist_task")
    assert "resumed_after_experience" not in ref
    assert {k: resumed[k] for k in SAME} == {k: ref[k] for k in SAME}


@pytest.mark.parametrize("fault", ["read-only", "disk full"])
def test_unwritable_output_gives_a_clear_error_and_no_corrupt_file(data_root, tmp_path, monkeypatch, fault):
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist") == 0
    before = {p: p.read_bytes() for p in out.rglob("*.json")}
    with monkeypatch.context() as mp:
        if fault == "read-only":  # as root, chmod does not stop writes: fail where the OS would
            real = tempfile.mkstemp

            def mkstemp(*a, dir=None, **k):
                if dir is not None and str(dir).startswith(str(out)):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS))
                return real(*a, dir=dir, **k)

            mp.setattr(tempfile, "mkstemp", mkstemp)
            match = r"output folder not writable: cannot write .*run\.json: Read-only file system"
        else:  # the disk fills up while the cell writes its first checkpoint
            real_fsync = os.fsync

            def fsync(fd):
                if "/checkpoints/" in os.readlink(f"/proc/self/fd/{fd}"):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_fsync(fd)

            mp.setattr(os, "fsync", fsync)
            match = r"output folder not writable: cannot write .*seed0\.pt: No space left on device.*re-run"
        with pytest.raises(SystemExit, match=match):
            _run(data_root, out, "--methods", "naive", "ewc", "--benchmarks", "permuted_mnist")
    assert _leftovers(out) == []
    for p, data in before.items():
        if p.name != "run.json":
            assert p.read_bytes() == data, p
    assert not (out / "cells/ewc/permuted_mnist/seed0.json").exists()
    assert _run(data_root, out, "--methods", "naive", "ewc", "--benchmarks", "permuted_mnist") == 0


def test_nan_loss_mid_training_marks_the_cell_failed_and_the_grid_goes_on(data_root, tmp_path, monkeypatch):
    from avalanche.core import SupervisedPlugin

    class NaNFromExperience1(SupervisedPlugin):
        def before_backward(self, strategy, *args, **kwargs):
            if strategy.experience.current_experience == 1 and strategy.clock.train_exp_iterations == 2:
                strategy.loss = strategy.loss * float("nan")

    bad = S.Method(name="nan_later", description="NaN in experience 1", model=S.default_model,
                   optimizer=S.default_optimizer, plugins=lambda ctx: [NaNFromExperience1()])
    monkeypatch.setitem(S.REGISTRY, "nan_later", bad)
    out = tmp_path / "run"
    assert _run(data_root, out, "--methods", "nan_later", "naive", "--benchmarks", "permuted_mnist") == 1
    failed = _cell(out, "nan_later", "permuted_mnist")
    assert failed["status"] == "failed"
    # permuted_mnist: 200 samples / batch 50 = 4 iterations per epoch; iteration 3 of experience 1 = 7th
    assert "NonFiniteLossError: non-finite loss nan at experience 1, epoch 0, iteration 7" in failed["error"]
    assert _cell(out, "naive", "permuted_mnist")["status"] == "ok"
    md = (out / "table1.md").read_text()
    assert "| nan_later | 0 | failed |" in md and "iteration 7" in md
    assert not (out / "checkpoints").exists()


def test_a_corrupt_checkpoint_is_ignored_and_the_cell_runs_from_its_start(data_root, tmp_path):
    out = tmp_path / "run"
    ck = out / "checkpoints/naive/permuted_mnist/seed0.pt"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"half a checkpoint")
    assert _run(data_root, out, "--methods", "naive", "--benchmarks", "permuted_mnist") == 0
    cell = _cell(out, "naive", "permuted_mnist")
    assert cell["status"] == "ok" and cell["checkpoints"] == "on" and "resumed_after_experience" not in cell
    assert not ck.exists()
