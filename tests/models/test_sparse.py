"""Sparse MLP / CNN models and their dense twins."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_sparse.layers import KWinners, KWinners2d, SparseWeights, SparseWeights2d
from avalanche_sparse.models import MultiHeadSparseCNN, MultiHeadSparseMLP, SparseCNN, SparseMLP


def _types(seq: nn.Sequential) -> list[type]:
    return [type(m) for m in seq]


def test_mlp_wiring_sparse_and_dense_twin():
    sparse = SparseMLP(16, 4, hidden_units=20, hidden_layers=2, dropout=0.5, seed=0)
    assert _types(sparse.features) == [nn.Flatten, SparseWeights, KWinners, nn.Dropout,
                                       SparseWeights, KWinners, nn.Dropout]
    dense = SparseMLP(16, 4, hidden_units=20, hidden_layers=2, dropout=0.5, sparsify=False)
    assert _types(dense.features) == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout,
                                      nn.Linear, nn.ReLU, nn.Dropout]
    assert isinstance(sparse.classifier, nn.Linear) and isinstance(dense.classifier, nn.Linear)
    # same network otherwise: same parameter shapes
    assert [p.shape for p in sparse.parameters()] == [p.shape for p in dense.parameters()]
    # no dropout layer when dropout == 0; density 1 -> plain Linear
    m = SparseMLP(16, 4, hidden_units=20, dropout=0.0, weight_sparsity_fc=1.0)
    assert _types(m.features) == [nn.Flatten, nn.Linear, KWinners]


def test_mlp_weight_density_is_fraction_of_nonzeros():
    m = SparseMLP(100, 3, hidden_units=30, weight_sparsity_fc=0.1, seed=1)
    w = m.features[1].module.weight
    assert torch.equal((w != 0).sum(1), torch.full((30,), 10))  # 10 % NON-zero per unit
    assert m.features[1].sparsity == pytest.approx(0.9)


def test_mlp_activations_k_winners_train_and_eval():
    torch.manual_seed(0)
    m = SparseMLP(50, 3, hidden_units=40, percent_on_fc=0.1, k_inference_factor=1.5, dropout=0.0,
                  weight_sparsity_fc=0.5, boost_strength=0.0, seed=0)
    x = torch.randn(32, 1, 5, 10)
    h = m.features(x)
    assert ((h != 0).sum(1) <= 4).all() and ((h != 0).sum(1) == 4).float().mean() > 0.9
    m.eval()
    h = m.features(x)
    assert ((h != 0).sum(1) <= 6).all() and ((h != 0).sum(1) == 6).float().mean() > 0.9
    assert m(x).shape == (32, 3)


def test_mlp_masks_reproducible_with_seed():
    a = SparseMLP(30, 2, hidden_units=10, seed=3)
    b = SparseMLP(30, 2, hidden_units=10, seed=3)
    c = SparseMLP(30, 2, hidden_units=10, seed=4)
    assert torch.equal(a.features[1].zero_mask, b.features[1].zero_mask)
    assert not torch.equal(a.features[1].zero_mask, c.features[1].zero_mask)


def test_model_rezero_and_boost_helpers():
    m = SparseMLP(30, 2, hidden_units=10, hidden_layers=2, boost_strength=2.0, boost_strength_factor=0.5,
                  seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(1.0)
    m.rezero_weights()
    for sw in (m.features[1], m.features[4]):
        assert torch.equal(sw.module.weight == 0, sw.zero_mask)
    m.update_boost_strength()  # exactly once per layer, not twice
    assert [k.boost_strength_value for k in (m.features[2], m.features[5])] == [1.0, 1.0]
    dense = SparseMLP(30, 2, hidden_units=10, sparsify=False)
    dense.rezero_weights()
    dense.update_boost_strength()  # no-ops


def test_cnn_wiring_and_local_winners():
    torch.manual_seed(0)
    m = SparseCNN(3, 5, image_size=12, channels=(8, 10), hidden_units=20, dropout=0.0,
                  percent_on_conv=0.25, percent_on_fc=0.2, weight_sparsity_conv=0.5,
                  weight_sparsity_fc=0.3, boost_strength=0.0, seed=0)
    assert _types(m.features) == [SparseWeights2d, nn.ReLU, KWinners2d, SparseWeights2d, nn.ReLU,
                                  KWinners2d, nn.Flatten, SparseWeights, nn.ReLU, KWinners]
    assert all(k.local for k in m.features if isinstance(k, KWinners2d))
    # 12 - 2 * 4 = 4: unpadded 5x5 convs, no pooling
    assert m.features[7].module.in_features == 10 * 4 * 4
    x = torch.randn(6, 3, 12, 12)
    maps = m.features[:6](x)
    assert maps.shape == (6, 10, 4, 4)
    # per location at most round(10 * 0.25) = 2 (3 with ties ruled out) channels on
    assert ((maps != 0).sum(1) <= 2).all()
    w = m.features[0].module.weight
    assert torch.equal((w != 0).flatten(1).sum(1), torch.full((8,), round(0.5 * 75)))
    assert m(x).shape == (6, 5)

    dense = SparseCNN(3, 5, image_size=12, channels=(8, 10), hidden_units=20, dropout=0.5, sparsify=False)
    assert _types(dense.features) == [nn.Conv2d, nn.ReLU, nn.Dropout, nn.Conv2d, nn.ReLU, nn.Dropout,
                                      nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout]
    assert [p.shape for p in dense.parameters()] == [p.shape for p in m.parameters()]


def test_multi_head_models_route_by_task(tiny_benchmark):
    from avalanche_sparse.benchmarks import tensor_split_benchmark

    m = MultiHeadSparseMLP(16, 2, hidden_units=20, dropout=0.0, seed=0).eval()
    x = torch.randn(5, 1, 4, 4)
    out = m(x, torch.zeros(5, dtype=torch.long))
    assert out.shape == (5, 2) and torch.allclose(out, m(x, 0))
    # Avalanche adaptation adds one head per task label
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    bm = tensor_split_benchmark(torch.randn(40, 1, 4, 4, generator=g), y,
                                torch.randn(40, 1, 4, 4, generator=g), y, 2, scenario="task")
    from avalanche.models.dynamic_modules import avalanche_model_adaptation

    m.train()
    for exp in bm.train_stream:
        avalanche_model_adaptation(m, exp)
    m.eval()
    assert len(m.classifier.classifiers) == 2
    out = m(x, torch.tensor([0, 1, 0, 1, 1]))
    assert out.shape[0] == 5
    assert torch.allclose(out[1, :2], m(x[1:2], 1)[0, :2], atol=1e-6)
    assert torch.allclose(out[0, :2], m(x[0:1], 0)[0, :2], atol=1e-6)
    assert not torch.allclose(m(x, 0)[:, :2], m(x, 1)[:, :2])
    c = MultiHeadSparseCNN(1, 3, image_size=10, channels=(10,), hidden_units=10, dropout=0.0, seed=0)
    assert c(torch.randn(2, 1, 10, 10), 0).shape == (2, 3)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"percent_on_fc": 0.0}, ValueError, r"percent_on_fc .* must be in \(0, 1\]"),
    ({"percent_on_fc": 1.5}, ValueError, r"percent_on_fc .* must be in \(0, 1\]"),
    ({"percent_on_fc": 0.01}, ValueError, r"percent_on_fc=0.01 gives k = round\(20 \* 0.01\) = 0"),
    ({"weight_sparsity_fc": 0.0}, ValueError, r"weight_sparsity_fc \(fraction of NON-zero weights\)"),
    ({"weight_sparsity_fc": 1.2}, ValueError, r"weight_sparsity_fc .* must be in \(0, 1\]"),
    ({"weight_sparsity_fc": 0.01}, ValueError, r"weight_sparsity_fc=0.01 .* keeps no input"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
    ({"hidden_units": 0}, ValueError, r"hidden_units must be an int >= 1"),
    ({"hidden_layers": 0}, ValueError, r"hidden_layers must be an int >= 1"),
    ({"hidden_layers": 1.5}, TypeError, r"hidden_layers must be an int"),
    ({"k_inference_factor": 0.0}, ValueError, r"k_inference_factor must be > 0"),
    ({"boost_strength": -1.0}, ValueError, r"boost_strength must be >= 0"),
    ({"boost_strength_factor": 0.0}, ValueError, r"boost_strength_factor must be in \(0, 1\]"),
    ({"duty_cycle_period": 0}, ValueError, r"duty_cycle_period must be an int >= 1"),
    ({"percent_on_fc": "0.1"}, TypeError, r"percent_on_fc must be a finite real number"),
])
def test_mlp_bad_arguments(kwargs, exc, match):
    base = {"hidden_units": 20}
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        SparseMLP(30, 2, **base)
    with pytest.raises(exc, match=match):
        MultiHeadSparseMLP(30, 2, **base)


@pytest.mark.parametrize("kwargs,match", [
    ({"percent_on_conv": 0.0}, r"percent_on_conv .* must be in \(0, 1\]"),
    ({"percent_on_conv": 0.04}, r"percent_on_conv=0.04 gives k = round\(10 \* 0.04\) = 0"),
    ({"weight_sparsity_conv": 1.5}, r"weight_sparsity_conv .* must be in \(0, 1\]"),
    ({"weight_sparsity_conv": 0.001}, r"weight_sparsity_conv=0.001 .* keeps no input"),
    ({"channels": ()}, r"channels must be a non-empty sequence"),
    ({"channels": (10, 0)}, r"channels must be a non-empty sequence"),
    ({"image_size": 8}, r"image_size=8 is too small .* must be >= 9"),
])
def test_cnn_bad_arguments(kwargs, match):
    base = {"image_size": 12, "channels": (10, 10), "hidden_units": 10}
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SparseCNN(1, 2, **base)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"SparseMLP expects inputs of shape \(batch, 16\)"):
        SparseMLP(16, 2, hidden_units=10)(torch.zeros(3, 15))
    with pytest.raises(ValueError, match=r"SparseCNN expects inputs of shape \(batch, 3, 12, 12\)"):
        SparseCNN(3, 2, image_size=12, channels=(10,), hidden_units=10)(torch.zeros(3, 1, 12, 12))
    with pytest.raises(ValueError, match=r"MultiHeadSparseMLP expects inputs"):
        MultiHeadSparseMLP(16, 2, hidden_units=10)(torch.zeros(3, 15), 0)
