"""reproduce/speed_dendrites.py: every timing is taken and the ratios follow from them."""
from __future__ import annotations

import pytest

from reproduce.speed_dendrites import dendrite_step_times


def test_small_network_timings_and_ratios():
    res = dendrite_step_times(hidden_sizes=(32,), num_segments=3, batch=16, repeats=2)
    timed = [k for k in res if k.endswith("_s")]
    assert set(timed) == {
        "dendritic_fwd_bwd_s", "no_segments_fwd_bwd_s", "dendritic_per_sample_context_fwd_bwd_s",
        "dendritic_train_step_s", "no_segments_train_step_s"}
    assert all(res[k] > 0 for k in timed)
    assert res["fwd_bwd_ratio"] == pytest.approx(res["dendritic_fwd_bwd_s"] / res["no_segments_fwd_bwd_s"])
    assert res["train_step_ratio"] == pytest.approx(
        res["dendritic_train_step_s"] / res["no_segments_train_step_s"])
    assert res["segment_params"] == 32 * 3 * 784
    assert res["feedforward_params"] == 784 * 32 + 32 + 32 * 10 + 10  # all weights, pruned ones too


def test_speed_cli_keep_freed_memory_flag_is_applied_and_recorded(tmp_path, monkeypatch):
    import json

    import avalanche_sparse.memory as memory
    import reproduce.speed_dendrites as sd
    from reproduce.speed import main

    monkeypatch.setattr(memory, "_in_effect", None)
    monkeypatch.setattr(memory, "_mallopt", lambda: lambda param, value: 1)
    real = sd.dendrite_step_times
    monkeypatch.setattr(sd, "dendrite_step_times",
                        lambda **kw: real(**{**kw, "hidden_sizes": (16,), "num_segments": 2, "batch": 8}))
    out = tmp_path / "d.json"
    assert main(["--section", "dendrites", "--repeats", "1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["keep_freed_memory"] is False
    assert main(["--section", "dendrites", "--repeats", "1", "--keep-freed-memory", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["keep_freed_memory"] is True
