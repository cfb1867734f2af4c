"""The grid batches every method's loaders through FastTensorLoaderPlugin."""
from __future__ import annotations

import pytest

from reproduce import grid

PROTOCOL = {"optimizer": "sgd", "lr": 0.05, "n_experiences": 2, "subsample": None,
            "train_epochs": 1, "train_mb_size": 50, "eval_mb_size": 100, "hidden_sizes": [16]}


@pytest.mark.parametrize("method", ["naive", "joint"])
def test_grid_cells_use_the_fast_loader(method, data_root, tmp_path):
    res = grid.run_cell(method, "permuted_mnist", 0, dict(PROTOCOL), tmp_path, root=data_root,
                        progress=False)
    assert res["status"] == "ok", res.get("error")
    fl = res["fast_loader"]
    # 2 training experiences + 2 evaluations of the 2-experience test stream
    assert fl["swaps"] == 6 and fl["fallbacks"] == 0, fl["last_fallback"]
