"""The Ray backend: one task per cell, same result files and table as the local backend.

Ray runs in local mode on this machine (``ray.init(num_cpus=2)``, loopback
only). Skipped when Ray is not installed (``pip install -e '.[ray]'``).
"""
from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")

import reproduce.table1 as T  # noqa: E402
from reproduce import presets  # noqa: E402

TINY = {"seeds": [0], "benchmarks": {
    "permuted_mnist": {"optimizer": "sgd", "lr": 0.05, "n_experiences": 2, "subsample": None,
                       "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100, "hidden_sizes": [16]}}}
SAME = ("acc_matrix", "avg_acc", "stream_acc", "forgetting", "bwt", "status", "protocol", "hparams")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _cells(out):
    return {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in out.glob("cells/*/*/*.json")}


def _body(md):
    return [line for line in md.splitlines() if not line.startswith("Made by")]


def test_ray_backend_gives_the_local_results(local_ray, data_root, tmp_path, monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "tiny", json.loads(json.dumps(TINY)))
    common = ["--preset", "tiny", "--root", str(data_root), "--no-progress", "--methods", "naive", "ewc"]
    assert T.main([*common, "--out", str(tmp_path / "ray"), "--backend", "ray", "--cpus-per-cell", "1"]) == 0
    assert T.main([*common, "--out", str(tmp_path / "local")]) == 0
    a, b = _cells(tmp_path / "ray"), _cells(tmp_path / "local")
    assert sorted(a) == sorted(b) and len(a) == 2
    for key in a:
        assert {k: a[key][k] for k in SAME} == {k: b[key][k] for k in SAME}, key
    assert _body((tmp_path / "ray" / "table1.md").read_text()) == _body((tmp_path / "local" / "table1.md").read_text())
    assert (tmp_path / "ray" / "table1.csv").read_text() == (tmp_path / "local" / "table1.csv").read_text()
    assert not (tmp_path / "ray" / "checkpoints").exists()
    assert list((tmp_path / "ray" / "tb" / "ewc" / "permuted_mnist" / "seed0").glob("events.out.tfevents.*"))
