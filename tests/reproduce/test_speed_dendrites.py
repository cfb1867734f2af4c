"""reproduce/speed_dendrites.py: every timing is taken and the ratios follow from them."""
from __future__ import annotations

import pytest

from reproduce.speed_dendrites import dendrite_step_times


def test_small_network_timings_and_ratios(monkeypatch):
    import avalanche_sparse.layers as layers

    calls = {"dense": 0}
    real = layers.winning_segments

    def counting(d, gate="absolute_max"):
        calls["dense"] += 1
        return real(d, gate)

    monkeypatch.setattr(layers, "winning_segments", counting)
    res = dendrite_step_times(hidden_sizes=(32,), num_segments=3, batch=16, repeats=2)
    timed = [k for k in res if k.endswith("_s")]
    assert set(timed) == {
        "dendritic_fwd_bwd_s", "dendritic_dense_backward_fwd_bwd_s", "no_segments_fwd_bwd_s",
        "dendritic_per_sample_context_fwd_bwd_s", "dendritic_train_step_s",
        "dendritic_dense_backward_train_step_s", "no_segments_train_step_s"}
    assert all(res[k] > 0 for k in timed)
    # the dense-backward runs went through winning_segments(segments(context)): one call per
    # hidden layer per run (warm-up + 2 repeats) for each of the two dense-backward timings
    assert calls["dense"] == 1 * 3 * 2
    assert res["winner_backward_speedup_fwd_bwd"] == pytest.approx(
        res["dendritic_dense_backward_fwd_bwd_s"] / res["dendritic_fwd_bwd_s"])
    assert res["winner_backward_speedup_train_step"] == pytest.approx(
        res["dendritic_dense_backward_train_step_s"] / res["dendritic_train_step_s"])
    assert res["segment_params"] == 32 * 3 * 784
