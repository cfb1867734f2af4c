"""The ``si_fixed`` row: Synaptic Intelligence that really regularises on CPU.

avalanche-lib 0.6.0's ``SynapticIntelligencePlugin`` snapshots the weights
with ``param.detach().cpu()``, which on CPU is a view of the live parameter,
so its importance stays exactly zero; ``si_fixed`` clones the snapshots.
"""
from __future__ import annotations

import torch

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo


def _train(name: str, bench):
    info = BenchmarkInfo(name="split_mnist_class", input_shape=(1, 4, 4), n_classes=4,
                         n_experiences=2, scenario="class", label="tiny")
    hp = S.resolve_hparams(S.get_method(name), "split_mnist_class",
                           {"hidden_sizes": [16], "lr": 0.05, "optimizer": "sgd", "train_epochs": 2,
                            "train_mb_size": 16, "eval_mb_size": 64})
    torch.manual_seed(0)
    strategy = S.build_strategy(S.get_method(name), S.MethodContext(benchmark=info, hparams=hp))
    for exp in bench.train_stream:
        strategy.train(exp)
    return strategy


def _importance(strategy) -> float:
    from avalanche.training.plugins import SynapticIntelligencePlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, SynapticIntelligencePlugin))
    return float(sum(v.data.abs().sum() for v in plugin.syn_data["cum_trajectory"].values()))


def test_si_fixed_accumulates_importance_where_stock_si_does_not(tiny_benchmark):
    fixed = _train("si_fixed", tiny_benchmark)
    assert _importance(fixed) > 0.0
    stock = _train("si", tiny_benchmark)
    # the avalanche-lib 0.6.0 bug this row works around: if this starts to fail,
    # Avalanche fixed it and `si_fixed` can be retired
    assert _importance(stock) == 0.0


def test_si_fixed_keeps_stock_settings():
    fixed, stock = S.get_method("si_fixed"), S.get_method("si")
    assert fixed.hparams == stock.hparams
    assert fixed.hparams_by_benchmark == stock.hparams_by_benchmark
