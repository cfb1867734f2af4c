"""Complex-synapse rows of the registry."""
from __future__ import annotations

import pytest
import torch

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
from avalanche_sparse.optim import ComplexSynapseAdam, ComplexSynapseSGD
from reproduce.presets import get_preset

TASK_INFO = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=4, n_experiences=2,
                          scenario="task", label="tiny")
ROWS = ["complex_synapse", "complex_synapse_plain", "complex_synapse_sgd"]


@pytest.fixture
def tiny_task_benchmark():
    from avalanche_sparse.benchmarks import tensor_split_benchmark

    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(80) % 4, torch.arange(40) % 4
    x_tr = torch.randn(80, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(40, 1, 4, 4, generator=g) + y_te.view(-1, 1, 1, 1)
    return tensor_split_benchmark(x_tr, y_tr, x_te, y_te, 2, scenario="task")


def tiny_hparams(name, **over):
    """The split_mnist_task hparams of ``name``, shrunk to the tiny benchmark."""
    method = S.get_method(name)
    protocol = get_preset("full")["benchmarks"]["split_mnist_task"]
    hp = S.resolve_hparams(method, "split_mnist_task", protocol)
    hp.update(hidden_sizes=[8], train_mb_size=16, train_iterations=5, **over)
    return method, hp


def test_rows_registered_on_their_benchmarks():
    for name in ROWS:
        assert S.get_method(name).benchmarks == ("split_mnist_task", "permuted_mnist")


@pytest.mark.parametrize("name", ROWS)
def test_reference_protocol_on_split_mnist_task(name):
    method = S.get_method(name)
    for preset in ("full", "quick"):
        protocol = get_preset(preset)["benchmarks"]["split_mnist_task"]
        hp = S.resolve_hparams(method, "split_mnist_task", protocol)
        assert hp["hidden_sizes"] == [400, 400]
        assert hp["train_mb_size"] == 128 and hp["train_iterations"] == 500
        assert hp["lr"] == (0.1 if name == "complex_synapse_sgd" else 1e-3)
    # permuted_mnist keeps the preset's protocol: only the optimizer differs
    protocol = get_preset("full")["benchmarks"]["permuted_mnist"]
    hp = S.resolve_hparams(method, "permuted_mnist", protocol)
    assert hp["hidden_sizes"] == protocol["hidden_sizes"] and "train_iterations" not in hp


def test_optimizers_of_the_rows():
    model = torch.nn.Linear(3, 2)
    _, hp = tiny_hparams("complex_synapse")
    opt = S.get_method("complex_synapse").optimizer(model, S.MethodContext(TASK_INFO, hp))
    assert type(opt) is ComplexSynapseAdam
    g = opt.param_groups[0]
    assert (g["n_beakers"], g["alpha"], g["beta"], g["timescale"], g["lr"]) == \
        (5, 500.0, 2500.0, "reference", 1e-3)
    _, hp = tiny_hparams("complex_synapse_plain")
    assert type(S.get_method("complex_synapse_plain").optimizer(model, S.MethodContext(TASK_INFO, hp))) \
        is torch.optim.Adam
    _, hp = tiny_hparams("complex_synapse_sgd")
    opt = S.get_method("complex_synapse_sgd").optimizer(model, S.MethodContext(TASK_INFO, hp))
    assert type(opt) is ComplexSynapseSGD
    assert (opt.param_groups[0]["timescale"], opt.param_groups[0]["lr"]) == ("iterations", 0.1)


def train(method, hp, bench, seed=0):
    torch.manual_seed(seed)
    strat = S.build_strategy(method, S.MethodContext(TASK_INFO, hp, seed=seed))
    for exp in bench.train_stream:
        strat.train(exp)
    return strat


@pytest.mark.parametrize("name", ["complex_synapse", "complex_synapse_sgd"])
def test_rows_train_with_beakers(tiny_task_benchmark, name):
    method, hp = tiny_hparams(name)
    strat = train(method, hp, tiny_task_benchmark)
    opt = strat.optimizer
    assert opt.num_steps == 10  # 5 iterations x 2 experiences
    trunk = strat.model.features[1].weight
    b = opt.beakers(trunk)
    assert b.shape == (5, 8, 16) and not torch.equal(b[0], b[1])
    res = strat.eval(tiny_task_benchmark.test_stream)
    assert all(0.0 <= v <= 1.0 for k, v in res.items() if k.startswith("Top1_Acc_Exp"))


def test_zero_beakers_is_exactly_the_plain_twin(tiny_task_benchmark):
    """With n_beakers=0 the complex-synapse row must equal its twin bit for bit:
    same network, initialisation, data order and protocol."""
    cs, hp_cs = tiny_hparams("complex_synapse", n_beakers=0)
    plain, hp_plain = tiny_hparams("complex_synapse_plain")
    a = train(cs, hp_cs, tiny_task_benchmark).model.state_dict()
    b = train(plain, hp_plain, tiny_task_benchmark).model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the 5-beaker row really differs from the twin
    cs5, hp5 = tiny_hparams("complex_synapse", cs_timescale="iterations", alpha=2.0, beta=20.0)
    c = train(cs5, hp5, tiny_task_benchmark).model.state_dict()
    assert not all(torch.equal(b[k], c[k]) for k in b)
