"""Dead-neuron fraction metric, logged to a real TensorBoard folder."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_sparse.metrics import DeadNeuronFraction, MetricsPlugin, dead_neuron_metrics
from avalanche_sparse.models import SDMLP, TopKMLP

TAG0 = "DeadNeurons/train_phase/train_stream/Exp000"
TAG1 = "DeadNeurons/train_phase/train_stream/Exp001"


def _expected_dead(model, exp) -> float:
    x = torch.stack([exp.dataset[i][0] for i in range(len(exp.dataset))])
    model.eval()
    with torch.no_grad():
        fired = (model.hidden(x) > 0).any(0)
    model.train()
    return 1.0 - float(fired.float().mean())


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _naive(model, lr, plugins, evaluator=None):
    from avalanche.training import Naive

    kw = {} if evaluator is None else {"evaluator": evaluator}
    return Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                 criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=2, eval_mb_size=64,
                 plugins=plugins, **kw)


def test_logged_to_tensorboard_with_exact_value(tiny_benchmark, tmp_path):
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TensorboardLogger
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    # frozen weights (lr 0): the set of neurons that ever fire is known exactly
    model = SDMLP(16, 4, n_neurons=200, k=2, gaba_switch_activations=None)
    tb = TensorboardLogger(tb_log_dir=str(tmp_path / "tb"))
    ev = EvaluationPlugin(accuracy_metrics(stream=True), *dead_neuron_metrics(), loggers=[tb])
    strat = _naive(model, 0.0, [], ev)
    expected = []
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
        expected.append(_expected_dead(model, exp))
    tb.writer.flush()
    tb.writer.close()
    scal = _scalars(tmp_path / "tb")
    assert 0.0 < expected[0] < 1.0
    assert scal[TAG0] == pytest.approx([expected[0]], abs=1e-6)
    assert scal[TAG1] == pytest.approx([expected[1]], abs=1e-6)


def test_gaba_switch_revives_neurons_compared_to_plain_topk(tiny_benchmark):
    res = {}
    for t in (None, 10_000):
        torch.manual_seed(0)
        model = SDMLP(16, 4, n_neurons=200, k=2, gaba_switch_activations=t)
        metric = DeadNeuronFraction()
        strat = _naive(model, 0.1, [MetricsPlugin(metric)])
        strat.train(tiny_benchmark.train_stream[0])
        res[t] = metric.result()["top_k"]
    assert res[10_000] == 0.0  # young neurons are excited: all fire
    assert res[None] > 0.5


def test_metrics_plugin_publishes_through_the_evaluator(tiny_benchmark):
    torch.manual_seed(0)
    model = TopKMLP(16, 4, n_neurons=40, k=2)
    strat = _naive(model, 0.1, [MetricsPlugin(DeadNeuronFraction())])
    strat.train(tiny_benchmark.train_stream[0])
    strat.eval(tiny_benchmark.test_stream)
    last = strat.evaluator.get_last_metrics()
    assert TAG0 in last and 0.0 <= last[TAG0] <= 1.0


def test_eval_and_post_training_passes_are_not_counted(tiny_benchmark):
    torch.manual_seed(0)
    model = SDMLP(16, 4, n_neurons=100, k=1, gaba_switch_activations=None)
    metric = DeadNeuronFraction()
    strat = _naive(model, 0.0, [MetricsPlugin(metric)])
    metric.before_training_exp(strat)  # hooks on, but not inside a training epoch
    model.train()
    model(torch.rand(50, 16))
    assert metric.result() == {}
    metric._remove_hooks()


def test_several_layers_and_bad_arguments(tiny_benchmark):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = SDMLP(16, 8, n_neurons=20, k=2, gaba_switch_activations=None)
            self.b = SDMLP(8, 4, n_neurons=10, k=2, gaba_switch_activations=None)

        def forward(self, x):
            return self.b(self.a(x))

    metric = DeadNeuronFraction()
    strat = _naive(Two(), 0.1, [MetricsPlugin(metric)])
    strat.train(tiny_benchmark.train_stream[0])
    assert set(metric.result()) == {"a.top_k", "b.top_k"}
    with pytest.raises(ValueError, match="not both"):
        DeadNeuronFraction(layer_types=[nn.ReLU], layer_names=["x"])
    with pytest.raises(TypeError, match="layer_types must be"):
        DeadNeuronFraction(layer_types=["relu"])
    bad = _naive(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), 0.1,
                 [MetricsPlugin(DeadNeuronFraction())])
    with pytest.raises(ValueError, match="no Top-K layer"):
        bad.train(tiny_benchmark.train_stream[0])
    named = _naive(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), 0.1,
                   [MetricsPlugin(DeadNeuronFraction(layer_names=["nope"]))])
    with pytest.raises(ValueError, match="no sub-module named"):
        named.train(tiny_benchmark.train_stream[0])
    with pytest.raises(ValueError, match="at least one metric"):
        MetricsPlugin()
