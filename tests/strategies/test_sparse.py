"""SparseNetworkPlugin with stock strategies, and the sparse_* / dense_* rows."""
from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import EWC, Naive, Replay, SynapticIntelligence
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_sparse.layers import KWinners, SparseWeightsBase
from avalanche_sparse.models import SparseMLP
from avalanche_sparse.strategies import SparseNetworkPlugin

EPOCHS = 2


class _SparsitySpy(SupervisedPlugin):
    """Checks, after every optimizer step (and after the plugin under test),
    that every pruned weight is exactly zero."""

    def __init__(self):
        super().__init__()
        self.checks: list[bool] = []

    def after_update(self, strategy, *args, **kwargs):
        self.checks.append(all(
            bool((m.module.weight[m.zero_mask] == 0).all())
            for m in strategy.model.modules() if isinstance(m, SparseWeightsBase)
        ))


def _model():
    torch.manual_seed(0)
    return SparseMLP(16, 4, hidden_units=20, hidden_layers=2, dropout=0.0, percent_on_fc=0.2,
                     weight_sparsity_fc=0.3, boost_strength=1.0, boost_strength_factor=0.5, seed=0)


def _strategy(kind, model, plugins, optimizer=None):
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    common = dict(model=model, optimizer=opt, criterion=nn.CrossEntropyLoss(), train_mb_size=16,
                  train_epochs=EPOCHS, eval_mb_size=64, plugins=plugins,
                  evaluator=EvaluationPlugin(loggers=[]))
    if kind == "naive":
        return Naive(**common)
    if kind == "ewc":
        return EWC(ewc_lambda=1.0, **common)
    if kind == "si":
        return SynapticIntelligence(si_lambda=1.0, **common)
    if kind == "replay":
        return Replay(mem_size=20, **common)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["naive", "ewc", "si", "replay"])
def test_plugin_keeps_weights_sparse_and_decays_boost(kind, tiny_benchmark):
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    plugin, spy = SparseNetworkPlugin(), _SparsitySpy()
    strategy = _strategy(kind, model, [plugin, spy])
    for exp in tiny_benchmark.train_stream:
        strategy.train(exp)
    n_exp = len(tiny_benchmark.train_stream)
    # re-zeroed after every single optimizer step, in every strategy
    assert spy.checks and all(spy.checks)
    assert plugin.rezero_steps == len(spy.checks)
    for m in model.modules():
        if isinstance(m, SparseWeightsBase):
            w = m.module.weight
            assert torch.equal(w == 0, m.zero_mask)  # exactly the masked ones are zero
    # boost strength decayed once per epoch: 1.0 * 0.5 ** (epochs * experiences)
    kws = [m for m in model.modules() if isinstance(m, KWinners)]
    assert len(kws) == 2
    expected = 0.5 ** (EPOCHS * n_exp)
    for kw in kws:
        assert kw.boost_strength_value == pytest.approx(expected)
        assert float(kw.boost_strength) == pytest.approx(expected)
    assert plugin.boost_updates == EPOCHS * n_exp
    # and the network did train
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_without_plugin_weights_do_not_stay_sparse(tiny_benchmark):
    """Control: the optimizer alone fills the pruned weights in (so the test
    above can fail), and the boost strength stays."""
    model = _model()
    spy = _SparsitySpy()
    strategy = _strategy("naive", model, [spy], optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    strategy.train(tiny_benchmark.train_stream[0])
    assert not any(spy.checks)
    assert model.features[2].boost_strength_value == 1.0


def test_plugin_switches_and_dense_model(tiny_benchmark):
    model = _model()
    plugin = SparseNetworkPlugin(rezero=False, decay_boost=False)
    spy = _SparsitySpy()
    _strategy("naive", model, [plugin, spy]).train(tiny_benchmark.train_stream[0])
    assert plugin.rezero_steps == 0 and plugin.boost_updates == 0
    assert not all(spy.checks)
    assert model.features[2].boost_strength_value == 1.0
    # a dense model: the plugin is a harmless no-op
    dense = SparseMLP(16, 4, hidden_units=20, sparsify=False)
    _strategy("naive", dense, [SparseNetworkPlugin()]).train(tiny_benchmark.train_stream[0])


def test_plugin_bad_arguments():
    with pytest.raises(TypeError, match="rezero and decay_boost must be bools"):
        SparseNetworkPlugin(rezero=1)
    with pytest.raises(TypeError):
        SparseNetworkPlugin(True)  # keyword-only


def test_rows_registered_with_seed_settings():
    from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
    from avalanche_sparse.models import MultiHeadSparseMLP, SparseCNN
    from avalanche_sparse.strategies import MethodContext, get_method, resolve_hparams
    from reproduce.presets import get_preset

    full, quick = get_preset("full")["benchmarks"], get_preset("quick")["benchmarks"]
    for name in ("sparse_mlp", "dense_mlp"):
        m = get_method(name)
        assert set(m.benchmarks) == {"permuted_mnist", "split_mnist_class", "split_mnist_task"}
        hp = resolve_hparams(m, "permuted_mnist", full["permuted_mnist"])
        # the seed's Permuted MNIST runs (DESIGN.md section 5)
        assert (hp["hidden_units"], hp["hidden_layers"], hp["percent_on_fc"]) == (4000, 1, 0.001)
        assert (hp["optimizer"], hp["lr"], hp["momentum"], hp["nesterov"]) == ("sgd", 0.1, 0.9, True)
        assert (hp["train_epochs"], hp["train_mb_size"], hp["n_experiences"]) == (2, 128, 10)
        q = resolve_hparams(m, "permuted_mnist", quick["permuted_mnist"])
        assert q["hidden_units"] < 4000 and q["lr"] == 0.1
    for name in ("sparse_cnn", "dense_cnn"):
        assert get_method(name).benchmarks == ("split_cifar10_class",)
    # sparse and dense twins get the same hparams, hence the same budget
    for b in ("permuted_mnist", "split_mnist_task"):
        assert resolve_hparams(get_method("sparse_mlp"), b, full[b]) == \
            resolve_hparams(get_method("dense_mlp"), b, full[b])

    info = BenchmarkInfo(name="split_mnist_task", input_shape=(1, 28, 28), n_classes=10,
                         n_experiences=5, scenario="task", label="x")
    hp = resolve_hparams(get_method("sparse_mlp"), "split_mnist_task", quick["split_mnist_task"])
    model = get_method("sparse_mlp").model(MethodContext(benchmark=info, hparams=hp))
    assert isinstance(model, MultiHeadSparseMLP) and model.sparsify
    dense = get_method("dense_mlp").model(MethodContext(benchmark=info, hparams=hp))
    assert not dense.sparsify
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in dense.parameters())
    cinfo = BenchmarkInfo(name="split_cifar10_class", input_shape=(3, 32, 32), n_classes=10,
                          n_experiences=5, scenario="class", label="x")
    hp = resolve_hparams(get_method("sparse_cnn"), "split_cifar10_class", quick["split_cifar10_class"])
    cnn = get_method("sparse_cnn").model(MethodContext(benchmark=cinfo, hparams=hp))
    assert isinstance(cnn, SparseCNN) and cnn(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    hp = resolve_hparams(get_method("sparse_cnn"), "split_cifar10_class", full["split_cifar10_class"])
    assert (hp["channels"], hp["hidden_units"], hp["lr"]) == ([64, 128], 1024, 0.01)
