"""Sparsity PluginMetrics: values, and logging through a real TensorboardLogger."""
from __future__ import annotations

import pytest
import torch
from avalanche.logging import TensorboardLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_sparse.layers import KWinners
from avalanche_sparse.metrics import (
    ActivationDensity, DeadUnits, DutyCycleHistogram, WeightDensity, sparsity_metrics,
)
from avalanche_sparse.models import SparseCNN, SparseMLP
from avalanche_sparse.strategies import SparseNetworkPlugin


def _train(model, bm, metrics, loggers=(), plugins=(), epochs=1):
    evaluator = EvaluationPlugin(*metrics, loggers=list(loggers))
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=epochs,
                     eval_mb_size=64, evaluator=evaluator, plugins=list(plugins))
    out = []
    for exp in bm.train_stream:
        strategy.train(exp)
        out.append(dict(evaluator.get_last_metrics()))
    return out


def test_activation_density_dead_units_weight_density(tiny_benchmark):
    torch.manual_seed(0)
    model = SparseMLP(16, 4, hidden_units=40, hidden_layers=1, dropout=0.0, percent_on_fc=0.1,
                      weight_sparsity_fc=0.25, boost_strength=0.0, seed=0)
    # 10 units can never win: their weights and bias are -inf-like (very negative)
    with torch.no_grad():
        model.features[1].module.bias[:10] = -1e4
    metrics = [ActivationDensity(), DeadUnits(), WeightDensity(include_dense=True), DutyCycleHistogram()]
    last = _train(model, tiny_benchmark, metrics, plugins=[SparseNetworkPlugin()])
    for i, vals in enumerate(last):
        ad = vals[f"ActivationDensity/train_phase/features.2/Exp{i:03d}"]
        assert ad == pytest.approx(4 / 40, abs=1e-3)  # k = 4 winners of 40 (continuous values: no ties)
        dead = vals[f"DeadUnits/train_phase/features.2/Exp{i:03d}"]
        assert 10 / 40 <= dead < 1.0  # the 10 suppressed units at least
        assert vals[f"WeightDensity/train_phase/features.1/Exp{i:03d}"] == pytest.approx(4 / 16)
        assert vals[f"WeightDensity/train_phase/classifier/Exp{i:03d}"] == pytest.approx(1.0)
        dc = vals[f"DutyCycle/train_phase/features.2/Exp{i:03d}"]
        assert isinstance(dc, torch.Tensor) and dc.shape == (40,)
        assert torch.all(dc[:10] == 0)
        assert 3.0 < float(dc.sum()) <= 4.0 + 1e-4  # duty cycles (positive winners only) sum to <= k


def test_dead_units_counts_exact_units_and_channels():
    m = DeadUnits()
    m._observe("a", torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 3.0, 0.0]]))
    m._observe("a", torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    assert m.result() == {"a": pytest.approx(0.25)}
    y = torch.zeros(2, 3, 2, 2)
    y[1, 2, 1, 0] = 1.0
    m._observe("c", y)
    assert m.result()["c"] == pytest.approx(2 / 3)
    d = ActivationDensity()
    d._observe("a", torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert d.result() == {"a": 0.25}
    m.reset()
    assert m.result() == {}


def test_weight_density_reveals_missing_rezero(tiny_benchmark):
    """Without the plugin the realised weight density drifts above the mask's."""
    torch.manual_seed(0)
    model = SparseMLP(16, 4, hidden_units=20, dropout=0.0, weight_sparsity_fc=0.25, seed=0)
    last = _train(model, tiny_benchmark, [WeightDensity()])
    assert last[-1]["WeightDensity/train_phase/features.1/Exp001"] > 0.9


def test_dense_twin_relu_density_and_cnn_layers(tiny_benchmark):
    torch.manual_seed(0)
    dense = SparseMLP(16, 4, hidden_units=20, dropout=0.0, sparsify=False)
    last = _train(dense, tiny_benchmark, sparsity_metrics())
    assert 0.0 < last[0]["ActivationDensity/train_phase/features.2/Exp000"] < 1.0
    assert not any(k.startswith("DutyCycle") or k.startswith("WeightDensity") for k in last[0])
    # per-location k-WTA of a CNN: channels are the units
    g = torch.Generator().manual_seed(0)
    from avalanche_sparse.benchmarks import tensor_split_benchmark

    y = torch.arange(16) % 2
    bm = tensor_split_benchmark(torch.randn(16, 1, 8, 8, generator=g), y,
                                torch.randn(16, 1, 8, 8, generator=g), y, 1)
    cnn = SparseCNN(1, 2, image_size=8, channels=(10,), hidden_units=10, dropout=0.0,
                    percent_on_conv=0.2, percent_on_fc=0.3, boost_strength=0.0, seed=0)
    vals = _train(cnn, bm, [ActivationDensity(), DeadUnits()])[0]
    assert vals["ActivationDensity/train_phase/features.2/Exp000"] <= 0.2 + 1e-6
    assert "DeadUnits/train_phase/features.2/Exp000" in vals


def test_metrics_logged_to_tensorboard(tiny_benchmark, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    model = SparseMLP(16, 4, hidden_units=20, hidden_layers=2, dropout=0.0, percent_on_fc=0.2,
                      weight_sparsity_fc=0.5, seed=0)
    logger = TensorboardLogger(tb_log_dir=str(tmp_path))
    _train(model, tiny_benchmark, sparsity_metrics(), loggers=[logger], plugins=[SparseNetworkPlugin()])
    logger.writer.flush()
    logger.writer.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    scalars, hists = set(acc.Tags()["scalars"]), set(acc.Tags()["histograms"])
    for exp in (0, 1):
        for layer in ("features.2", "features.4"):
            assert f"ActivationDensity/train_phase/{layer}/Exp{exp:03d}" in scalars
            assert f"DeadUnits/train_phase/{layer}/Exp{exp:03d}" in scalars
            assert f"DutyCycle/train_phase/{layer}/Exp{exp:03d}" in hists
        for layer in ("features.1", "features.3"):
            tag = f"WeightDensity/train_phase/{layer}/Exp{exp:03d}"
            assert tag in scalars
            assert acc.Scalars(tag)[-1].value == pytest.approx(0.5)
    val = acc.Scalars("ActivationDensity/train_phase/features.2/Exp000")[-1].value
    assert val == pytest.approx(4 / 20, abs=0.01)


def test_bad_arguments():
    with pytest.raises(TypeError, match="layer_types must be a non-empty sequence"):
        ActivationDensity(())
    with pytest.raises(TypeError, match="layer_types must be a non-empty sequence"):
        DeadUnits([int])
    assert [str(m) for m in sparsity_metrics()] == ["ActivationDensity", "DutyCycle", "DeadUnits",
                                                    "WeightDensity"]
    assert isinstance(KWinners(10, 0.2), nn.Module)
