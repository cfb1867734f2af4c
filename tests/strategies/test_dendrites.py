"""Dendrite plugins with stock Avalanche strategies on a tiny synthetic permuted benchmark."""
from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive, SynapticIntelligence
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin, SynapticIntelligencePlugin
from torch import nn

from avalanche_sparse.benchmarks import tensor_permuted_benchmark
from avalanche_sparse.layers import SparseWeights
from avalanche_sparse.models import DendriticMLP
from avalanche_sparse.strategies import (
    OptimizerResetPlugin,
    PrototypeContextPlugin,
    RezeroAfterStepPlugin,
    SafeSynapticIntelligencePlugin,
)

N_EXP, SIDE = 3, 6
N_IN = SIDE * SIDE


@pytest.fixture(scope="module")
def permuted():
    """3 permuted tasks over 6x6 images with a strong shared spatial pattern,
    so the task prototypes (permuted pattern means) are well separated."""
    g = torch.Generator().manual_seed(0)
    base = (torch.rand(1, 1, SIDE, SIDE, generator=g) > 0.5).float()
    y_tr, y_te = torch.arange(96) % 4, torch.arange(48) % 4

    def make(y):
        noise = 0.15 * torch.rand(len(y), 1, SIDE, SIDE, generator=g)
        cls = torch.zeros(len(y), N_IN)
        for c in range(4):  # a class-specific block of 9 pixels
            cls[y == c, 9 * c:9 * (c + 1)] = 0.6
        cls = cls.view(len(y), 1, SIDE, SIDE)
        return (0.8 * base + noise + cls).clamp(0, 1)

    return tensor_permuted_benchmark(make(y_tr), y_tr, make(y_te), y_te, N_EXP, seed=1)


def _model(**kw):
    torch.manual_seed(0)
    args = dict(input_size=N_IN, output_size=10, hidden_sizes=[32, 32], num_segments=N_EXP,
                dim_context=N_IN, kw_percent_on=0.25, weight_sparsity=0.5, seed=0)
    args.update(kw)
    return DendriticMLP(**args)


def _naive(model, plugins, epochs=2, lr=2e-2):
    return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                 criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=epochs,
                 eval_mb_size=32, evaluator=_evaluator(), plugins=plugins)


def _evaluator():
    return EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])


class _Spy(SupervisedPlugin):
    """Records the task ids the model used in each eval experience and Adam's step count."""

    def __init__(self):
        super().__init__()
        self.eval_ids: dict[int, list] = {}
        self.steps_after_exp: list[int] = []

    def after_eval_iteration(self, strategy, *a, **k):
        e = strategy.experience.current_experience
        self.eval_ids.setdefault(e, []).extend(strategy.model.last_task_ids.tolist())

    def after_training_exp(self, strategy, *a, **k):
        st = strategy.optimizer.state
        self.steps_after_exp.append(max(int(s["step"]) for s in st.values()))


def test_naive_with_prototypes_infers_every_task(permuted):
    model = _model()
    proto = PrototypeContextPlugin()
    reset, spy = OptimizerResetPlugin(), _Spy()
    strat = _naive(model, [proto, RezeroAfterStepPlugin(), reset, spy])
    for i, exp in enumerate(permuted.train_stream):
        strat.train(exp)
        assert model.context_task == i
    res = strat.eval(permuted.test_stream)
    # one prototype per task: the mean of that task's flattened training inputs
    assert model.num_prototypes == N_EXP
    for t, exp in enumerate(permuted.train_stream):
        xs = torch.stack([exp.dataset[i][0] for i in range(len(exp.dataset))]).reshape(-1, N_IN)
        assert torch.allclose(model.prototypes[t], xs.mean(0), atol=1e-5)
    # task inference is correct on well-separated tasks, recorded per sample
    assert proto.task_inference_accuracy == {0: 1.0, 1: 1.0, 2: 1.0}
    assert all(torch.equal(ids, torch.full((48,), t)) for t, ids in proto.inferred_tasks.items())
    assert res["TaskInference_Acc_Stream/eval_phase/test_stream"] == 1.0
    assert res["TaskInference_Acc_Exp/eval_phase/test_stream/Exp002"] == 1.0
    assert torch.equal(proto.task_confusion(), torch.eye(N_EXP, dtype=torch.float64))
    # Adam re-created per task: its step count restarts at every experience
    per_exp = 2 * (96 // 16)
    assert spy.steps_after_exp == [per_exp] * N_EXP and reset.resets == N_EXP
    # masks hold after training
    for m in model.modules():
        if isinstance(m, SparseWeights):
            assert torch.all(m.weight[m.zero_mask] == 0)
    acc = res["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
    assert acc > 0.4  # 4 classes: chance is 0.25


def test_prototype_context_really_gates_the_network(permuted):
    """Evaluating a task's data with another task's prototype changes the output."""
    model = _model()
    strat = _naive(model, [PrototypeContextPlugin(), RezeroAfterStepPlugin()], epochs=1)
    for exp in permuted.train_stream:
        strat.train(exp)
    x = torch.stack([permuted.test_stream[0].dataset[i][0] for i in range(8)]).reshape(8, -1)
    model.train()
    outs = []
    for t in range(N_EXP):
        model.context_task = t
        outs.append(model(x))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])
    model.eval()
    assert torch.allclose(model(x), outs[0], atol=1e-6) or model.activations[0].k != model.activations[0].k_inference


def test_synaptic_intelligence_strategy_with_prototypes(permuted):
    """Avalanche's SynapticIntelligence strategy, unchanged, with the dendrite plugins."""
    model = _model()
    proto = PrototypeContextPlugin()
    strat = SynapticIntelligence(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=2e-2),
        criterion=nn.CrossEntropyLoss(), si_lambda=0.2, eps=0.1,
        train_mb_size=16, train_epochs=1, eval_mb_size=32,
        evaluator=_evaluator(), plugins=[proto, RezeroAfterStepPlugin()])
    for exp in permuted.train_stream[:2]:
        strat.train(exp)
    strat.eval(permuted.test_stream[:2])
    assert any(isinstance(p, SynapticIntelligencePlugin) for p in strat.plugins)
    assert proto.task_inference_accuracy == {0: 1.0, 1: 1.0}
    assert model.num_prototypes == 2


def test_safe_si_plugin_excluding_segments_as_in_the_paper(permuted):
    """SI on the feed-forward weights only (the reference's default) with
    Naive; unlike the stock plugin on CPU, importance and penalty are non-zero."""
    model = _model()
    si = SafeSynapticIntelligencePlugin(si_lambda=0.2, eps=0.1, excluded_parameters=["*segments*"])
    penalties = []

    class _Loss(SupervisedPlugin):
        def before_backward(self, strategy, *a, **k):
            penalties.append(float(si.compute_ewc_loss(strategy.model, si.ewc_data, si.excluded_parameters,
                                                       "cpu", lambd=0.2)))

    strat = _naive(model, [PrototypeContextPlugin(), RezeroAfterStepPlugin(), si, _Loss()], epochs=1)
    for exp in permuted.train_stream[:2]:
        strat.train(exp)
    names = set(si.ewc_data[1])
    assert names and not any("segments" in n for n in names)
    imp = si.ewc_data[1]["hidden_layers.0.linear.module.weight"].data
    assert float(imp.abs().sum()) > 0 and float(imp.max()) > 0.001  # not clipped at 0.001
    # anchor = weights at the end of task 0, a copy: the penalty grows during task 1
    assert penalties[6] == 0.0 and penalties[-1] > 0.0
    live = dict(model.named_parameters())["hidden_layers.0.linear.module.weight"]
    assert si.ewc_data[0]["hidden_layers.0.linear.module.weight"].data.data_ptr() != live.data_ptr()
    with pytest.raises(ValueError, match="clip_to"):
        SafeSynapticIntelligencePlugin(si_lambda=1.0, clip_to=0)


def test_onehot_mode_uses_the_oracle_task_and_restores_it(permuted):
    model = _model(context="onehot", dim_context=N_EXP, context_percent_on=1 / N_EXP)
    spy = _Spy()
    strat = _naive(model, [PrototypeContextPlugin(), spy], epochs=1)
    for exp in permuted.train_stream[:2]:
        strat.train(exp)
    strat.eval(permuted.test_stream)
    assert {e: set(v) for e, v in spy.eval_ids.items()} == {0: {0}, 1: {1}, 2: {2}}
    assert model.context_task == 1  # the training task is restored after evaluation
    assert model.num_prototypes == 0


def test_periodic_eval_inside_training(permuted):
    model = _model()

    def strategy(every):
        return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=2, eval_mb_size=32,
                     evaluator=_evaluator(), plugins=[proto], eval_every=every)

    proto = PrototypeContextPlugin()
    # Avalanche's initial periodic evaluation comes before any prototype exists
    with pytest.raises(RuntimeError, match="no prototypes yet"):
        strategy(1).train(permuted.train_stream[0], eval_streams=[permuted.test_stream[:1]])
    strategy(-1).train(permuted.train_stream[0])
    strategy(1).train(permuted.train_stream[1], eval_streams=[permuted.test_stream[:2]])
    assert model.context_task == 1 and proto.task_inference_accuracy == {0: 1.0, 1: 1.0}


def test_eval_before_any_prototype_is_a_clear_error(permuted):
    model = _model()
    strat = _naive(model, [PrototypeContextPlugin()])
    with pytest.raises(RuntimeError, match="no prototypes yet"):
        strat.eval(permuted.test_stream[:1])


def test_plugin_bad_input(permuted):
    with pytest.raises(ValueError, match="task_source must be one of"):
        PrototypeContextPlugin(task_source="label")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        PrototypeContextPlugin(batch_size=0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(N_IN, 10))
    strat = _naive(mlp, [PrototypeContextPlugin()])
    with pytest.raises(TypeError, match="needs an avalanche_sparse.models.DendriticMLP"):
        strat.train(permuted.train_stream[0])
    with pytest.raises(RuntimeError, match="no evaluation"):
        PrototypeContextPlugin().task_confusion()


def test_task_label_source(permuted):
    from avalanche_sparse.strategies.dendrites import experience_task_id

    exp = permuted.train_stream[2]
    assert experience_task_id(exp, "experience") == 2
    assert experience_task_id(exp, "task_label") == 0
    with pytest.raises(ValueError, match="task_source must be one of"):
        experience_task_id(exp, "nope")
