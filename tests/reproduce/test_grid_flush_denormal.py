"""Cells flush subnormal floats by default (Adam's stuck moments slow x86 down)."""
from __future__ import annotations

import pytest
import torch

from reproduce import grid

PROTOCOL = {"optimizer": "adam", "lr": 0.01, "n_experiences": 2, "subsample": None,
            "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100, "hidden_sizes": [16]}

needs_ftz = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="CPU cannot flush subnormals")


def _flushes_during_training(monkeypatch):
    """Record, at the first optimizer step, whether subnormals were flushed."""
    seen = []
    real = torch.optim.Adam.step

    def step(self, *a, **k):
        seen.append(grid.flush_denormal_on())
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return seen


@needs_ftz
@pytest.mark.parametrize("flush", [True, False])
def test_cell_trains_with_the_requested_mode_records_it_and_restores_the_callers(
        flush, data_root, tmp_path, monkeypatch):
    seen = _flushes_during_training(monkeypatch)
    torch.set_flush_denormal(not flush)  # the caller's mode: the opposite
    try:
        res = grid.run_cell("naive", "permuted_mnist", 0, dict(PROTOCOL), tmp_path, root=data_root,
                            progress=False, flush_denormal=flush)
        assert res["status"] == "ok", res.get("error")
        assert res["flush_denormal"] is flush
        assert seen and set(seen) == {flush}
        assert grid.flush_denormal_on() is (not flush)
    finally:
        torch.set_flush_denormal(False)


@needs_ftz
def test_flush_denormal_on_detects_the_mode():
    try:
        torch.set_flush_denormal(True)
        assert grid.flush_denormal_on()
        assert float(torch.tensor([1e-39]) * 1.0) == 0.0
        torch.set_flush_denormal(False)
        assert not grid.flush_denormal_on()
        assert float(torch.tensor([1e-39]) * 1.0) > 0.0
    finally:
        torch.set_flush_denormal(False)


def test_table1_flag_turns_it_off():
    from reproduce.table1 import parse_args

    assert parse_args(["--preset", "quick"]).no_flush_denormal is False
    assert parse_args(["--preset", "quick", "--no-flush-denormal"]).no_flush_denormal is True
