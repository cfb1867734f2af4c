"""Cells keep freed memory mapped by default (glibc thresholds), recorded per cell."""
from __future__ import annotations

import pytest

from reproduce import grid

PROTOCOL = {"optimizer": "adam", "lr": 0.01, "n_experiences": 2, "subsample": None,
            "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100, "hidden_sizes": [16]}


@pytest.mark.parametrize("keep", [True, False])
def test_cell_asks_for_it_only_when_told_and_records_it(keep, data_root, tmp_path, monkeypatch):
    import avalanche_sparse.memory as memory

    calls = []
    monkeypatch.setattr(memory, "_in_effect", None)  # as in a fresh process
    monkeypatch.setattr(memory, "_mallopt", lambda: lambda param, value: calls.append(param) or 1)
    res = grid.run_cell("naive", "permuted_mnist", 0, dict(PROTOCOL), tmp_path, root=data_root,
                        progress=False, keep_freed_memory=keep)
    assert res["status"] == "ok", res.get("error")
    assert res["keep_freed_memory"] is keep
    assert len(calls) == (2 if keep else 0)  # mmap and trim thresholds


def test_table1_flag_turns_it_off():
    from reproduce.table1 import parse_args

    assert parse_args(["--preset", "quick"]).no_keep_freed_memory is False
    assert parse_args(["--preset", "quick", "--no-keep-freed-memory"]).no_keep_freed_memory is True
