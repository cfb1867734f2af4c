"""``sparse_mlp_cs``: a SparseMLP trained with ComplexSynapseSGD is one registry row."""
from __future__ import annotations

import torch

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
from avalanche_sparse.layers import SparseWeightsBase
from avalanche_sparse.optim import ComplexSynapseSGD


def test_sparse_mlp_cs_trains_a_sparse_mlp_with_complex_synapses(tiny_benchmark):
    method = S.get_method("sparse_mlp_cs")
    info = BenchmarkInfo(name="split_mnist_class", input_shape=(1, 4, 4), n_classes=4,
                         n_experiences=2, scenario="class", label="tiny")
    hp = S.resolve_hparams(method, "split_mnist_class",
                           {"subsample": 0.1, "train_epochs": 1, "train_mb_size": 16, "eval_mb_size": 64})
    hp.update(hidden_units=32, percent_on_fc=0.25)
    torch.manual_seed(0)
    strategy = S.build_strategy(method, S.MethodContext(benchmark=info, hparams=hp))
    assert isinstance(strategy.optimizer, ComplexSynapseSGD)
    assert strategy.optimizer.defaults["n_beakers"] == 5
    layers = [m for m in strategy.model.modules() if isinstance(m, SparseWeightsBase)]
    assert layers
    before = [layer.weight.detach().clone() for layer in layers]
    for exp in tiny_benchmark.train_stream:
        strategy.train(exp)
    for layer, w0 in zip(layers, before):
        assert not torch.equal(layer.weight, w0)              # it learned
        assert torch.all(layer.weight[layer.zero_mask] == 0)  # and stayed sparse
    beakers = strategy.optimizer.beakers(layers[0].weight)
    assert beakers.shape[0] == 5 and torch.isfinite(beakers).all()
