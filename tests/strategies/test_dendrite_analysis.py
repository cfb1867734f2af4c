"""Subnetwork analysis to TensorBoard, and the dendrite rows of the registry."""
from __future__ import annotations

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TensorboardLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks import tensor_permuted_benchmark
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
from avalanche_sparse.models import MLP, DendriticMLP
from avalanche_sparse.strategies import (
    DendriteAnalysisPlugin,
    OptimizerResetPlugin,
    PrototypeContextPlugin,
    RezeroAfterStepPlugin,
    SafeSynapticIntelligencePlugin,
)

SIDE, N_EXP = 5, 3
N_IN = SIDE * SIDE


@pytest.fixture(scope="module")
def permuted():
    g = torch.Generator().manual_seed(0)
    base = (torch.rand(1, 1, SIDE, SIDE, generator=g) > 0.5).float()
    y_tr, y_te = torch.arange(64) % 4, torch.arange(32) % 4

    def make(y):
        return (0.8 * base + 0.2 * torch.rand(len(y), 1, SIDE, SIDE, generator=g)
                + 0.3 * (y.view(-1, 1, 1, 1) == 1).float())

    return tensor_permuted_benchmark(make(y_tr), y_tr, make(y_te), y_te, N_EXP, seed=2)


def _events(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    return ea


def test_maps_and_tensorboard(permuted, tmp_path):
    torch.manual_seed(0)
    model = DendriticMLP(N_IN, 10, hidden_sizes=[20, 16], num_segments=N_EXP, dim_context=N_IN,
                         kw_percent_on=0.2, seed=0)
    tb = TensorboardLogger(tb_log_dir=str(tmp_path / "tb"))
    analysis = DendriteAnalysisPlugin(num_units=8)
    strat = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                  criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=1, eval_mb_size=20,
                  evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[tb]),
                  plugins=[PrototypeContextPlugin(), RezeroAfterStepPlugin(), analysis])
    for exp in permuted.train_stream[:2]:
        strat.train(exp)
        strat.eval(permuted.test_stream)
    assert model.record_activity is False and model.last_hidden == []
    assert analysis.tasks == [0, 1, 2]
    act, win = analysis.activity_maps, analysis.segment_winner_maps
    assert [a.shape for a in act] == [(3, 20), (3, 16)]
    assert [w.shape for w in win] == [(3, N_EXP), (3, N_EXP)]
    assert torch.allclose(win[0].sum(1), torch.ones(3))
    # the k-WTA keeps k = 4 of 20 units per sample: each row sums to 4 active units on average
    assert torch.allclose(act[0].sum(1), torch.full((3,), 4.0), atol=1e-5)
    # recompute the activity map of task 0 by hand
    x = torch.stack([permuted.test_stream[0].dataset[i][0] for i in range(32)]).reshape(32, -1)
    model.eval()
    model.record_activity = True
    model(x)
    assert torch.allclose(act[0][0], (model.last_hidden[0] != 0).float().mean(0), atol=1e-6)
    wins = model.last_winning_segments()[1]
    assert torch.allclose(win[1][0], torch.bincount(wins.flatten(), minlength=N_EXP).float() / wins.numel())
    tb.writer.flush()
    ea = _events(tmp_path / "tb")
    images = ea.Tags()["images"]
    for tag in ("Dendrites/hidden_activity_per_task/layer0", "Dendrites/hidden_activity_per_task/layer1",
                "Dendrites/segment_winners_per_task/layer0", "Dendrites/segment_winners_per_task/layer1"):
        assert tag in images
        assert [e.step for e in ea.Images(tag)] == [1, 2]  # one image per evaluation, step = experiences done
    scalars = ea.Tags()["scalars"]
    for k in range(N_EXP):
        assert f"TaskInference_Acc_Exp/eval_phase/test_stream/Exp{k:03d}" in scalars
    stream = ea.Scalars("TaskInference_Acc_Stream/eval_phase/test_stream")
    assert len(stream) == 2 and 0.0 <= stream[-1].value <= 1.0
    exp0 = ea.Scalars("TaskInference_Acc_Exp/eval_phase/test_stream/Exp000")
    assert exp0[-1].value == 1.0


def test_analysis_without_segments_and_bad_input(permuted):
    model = DendriticMLP(N_IN, 10, hidden_sizes=[12], num_segments=0, dim_context=N_IN, kw_percent_on=0.25)
    analysis = DendriteAnalysisPlugin()
    strat = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                  criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=1, eval_mb_size=32,
                  evaluator=EvaluationPlugin(loggers=[]), plugins=[analysis])
    strat.train(permuted.train_stream[0])
    strat.eval(permuted.test_stream[:1])
    assert analysis.segment_winner_maps == [] and analysis.activity_maps[0].shape == (1, 12)
    with pytest.raises(ValueError, match="num_units must be an int >= 1"):
        DendriteAnalysisPlugin(num_units=0)
    with pytest.raises(ValueError, match="task_source"):
        DendriteAnalysisPlugin(task_source="nope")


ROWS = ["dendrites", "dendrites_si", "dendrites_only", "sparse_only", "dendrites_mlp_baseline"]


def _ctx(name, subsample):
    method = S.get_method(name)
    protocol = {"optimizer": "adam", "lr": 1e-3, "eval_mb_size": 1024, "n_experiences": 10,
                "subsample": subsample, "train_epochs": 1, "train_mb_size": 128, "hidden_sizes": [16]}
    info = BenchmarkInfo(name="permuted_mnist", input_shape=(1, 28, 28), n_classes=10, n_experiences=10,
                         scenario="domain", label="Permuted MNIST")
    return method, S.MethodContext(benchmark=info, hparams=S.resolve_hparams(method, "permuted_mnist", protocol))


@pytest.mark.parametrize("name", ROWS)
def test_rows_are_registered_for_permuted_mnist_only(name):
    assert S.get_method(name).benchmarks == ("permuted_mnist",)


def test_row_settings_quick_vs_full():
    from avalanche_sparse.strategies.dendrites import _loop_settings, paper_settings

    # full data: the paper's PROTOTYPE_10 settings
    method, ctx = _ctx("dendrites", None)
    hp = paper_settings(ctx)
    assert hp["hidden_sizes"] == [2048, 2048] and hp["lr"] == 5e-4 and hp["train_epochs"] == 3
    assert _loop_settings(ctx) == {"train_epochs": 3, "train_mb_size": 256, "eval_mb_size": 512}
    # subsampled (quick): the protocol's small network and loop
    method, ctx = _ctx("dendrites", 0.1)
    model = method.model(ctx)
    assert isinstance(model, DendriticMLP) and model.hidden_sizes == [16] and model.num_segments == 10
    assert model.kw_percent_on == 0.05 and model.weight_sparsity == 0.5 and model.context_mode == "prototype"
    assert _loop_settings(ctx)["train_epochs"] == 1
    assert method.optimizer(model, ctx).param_groups[0]["lr"] == 1e-3
    kinds = {type(p) for p in method.plugins(ctx)}
    assert {PrototypeContextPlugin, RezeroAfterStepPlugin, OptimizerResetPlugin, DendriteAnalysisPlugin} <= kinds


def test_ablation_rows():
    m, ctx = _ctx("dendrites_only", 0.1)
    assert isinstance(m.model(ctx).activations[0], nn.ReLU)
    assert paper_lr("dendrites_only") == 5e-6
    m, ctx = _ctx("sparse_only", 0.1)
    assert m.model(ctx).num_segments == 0 and paper_lr("sparse_only") == 1e-4
    m, ctx = _ctx("dendrites_si", 0.1)
    plugins = m.plugins(ctx)
    si = [p for p in plugins if isinstance(p, SafeSynapticIntelligencePlugin)]
    assert len(si) == 1 and si[0].si_lambda == [0.2] and si[0].eps == 0.1
    assert not any(isinstance(p, OptimizerResetPlugin) for p in plugins)  # SI: Adam not reset
    m, ctx = _ctx("dendrites_si", None)
    from avalanche_sparse.strategies.dendrites import paper_settings

    assert paper_settings(ctx)["hidden_sizes"] == [2000, 2000] and paper_settings(ctx)["train_epochs"] == 20
    m, ctx = _ctx("dendrites_mlp_baseline", 0.1)
    model = m.model(ctx)
    assert isinstance(model, MLP) and paper_lr("dendrites_mlp_baseline") == 3e-6


def paper_lr(name):
    from avalanche_sparse.strategies.dendrites import paper_settings

    return paper_settings(_ctx(name, None)[1])["lr"]


def test_dendrites_row_trains_through_build_strategy(permuted):
    method = S.get_method("dendrites")
    protocol = {"optimizer": "adam", "lr": 1e-2, "eval_mb_size": 64, "subsample": 0.5, "train_epochs": 1,
                "train_mb_size": 16, "hidden_sizes": [16]}
    info = BenchmarkInfo(name="permuted_mnist", input_shape=(1, SIDE, SIDE), n_classes=10,
                         n_experiences=N_EXP, scenario="domain", label="tiny")
    ctx = S.MethodContext(benchmark=info, hparams=S.resolve_hparams(method, "permuted_mnist", protocol))
    strat = S.build_strategy(method, ctx, evaluator=EvaluationPlugin(loggers=[]))
    for exp in permuted.train_stream[:2]:
        strat.train(exp)
    res = strat.eval(permuted.test_stream[:2])
    assert strat.model.num_prototypes == 2
    assert res["TaskInference_Acc_Stream/eval_phase/test_stream"] == 1.0


@pytest.mark.parametrize("tasks, epochs, lr", [(2, 1, 5e-4), (5, 1, 5e-4), (10, 3, 5e-4), (25, 5, 3e-4),
                                               (7, 3, 5e-4)])
def test_dendrites_row_takes_the_reference_settings_for_its_task_count(tasks, epochs, lr):
    from avalanche_sparse.strategies.dendrites import paper_settings

    method = S.get_method("dendrites")
    protocol = {"optimizer": "adam", "lr": 1e-3, "eval_mb_size": 1024, "n_experiences": tasks,
                "subsample": None, "train_epochs": 10, "train_mb_size": 128, "hidden_sizes": [16]}
    info = BenchmarkInfo(name="permuted_mnist", input_shape=(1, 28, 28), n_classes=10, n_experiences=tasks,
                         scenario="domain", label="Permuted MNIST")
    ctx = S.MethodContext(benchmark=info, hparams=S.resolve_hparams(method, "permuted_mnist", protocol))
    hp = paper_settings(ctx)
    assert (hp["train_epochs"], hp["lr"], hp["hidden_sizes"]) == (epochs, lr, [2048, 2048])
    # subsampled data keeps the protocol's loop whatever the task count
    ctx.hparams["subsample"] = 0.1
    assert paper_settings(ctx)["train_epochs"] == 10
    # the other rows have no per-task settings: their 10-task ones apply
    other = S.get_method("dendrites_only")
    ctx2 = S.MethodContext(benchmark=info, hparams=S.resolve_hparams(other, "permuted_mnist", protocol))
    assert paper_settings(ctx2)["train_epochs"] == 5
