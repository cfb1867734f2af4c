"""SDMPlugin inside stock Avalanche strategies, and the SDM registry rows."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
from avalanche_sparse.models import SDMLP, StaleMomentumWarning, TopKMLP
from avalanche_sparse.strategies import SDMPlugin

INFO = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=4, n_experiences=2,
                     scenario="class", label="tiny")
PROTOCOL = {"optimizer": "adam", "lr": 1e-3, "train_epochs": 2, "train_mb_size": 16,
            "eval_mb_size": 64, "hidden_sizes": [8]}


def _strategy(name, model, optimizer, plugins, **kw):
    import avalanche.training as T

    return getattr(T, name)(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
                            train_mb_size=16, train_epochs=2, eval_mb_size=64, plugins=plugins,
                            **kw)


class _Recorder(SDMPlugin):
    """Records the constraint state right after every update."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.norms, self.mins, self.ks = [], [], []

    def after_update(self, strategy, *a, **kw):
        super().after_update(strategy, *a, **kw)
        w = strategy.model.addresses.weight.detach()
        self.norms.append(w.norm(dim=1))
        self.mins.append(min(float(p.detach().min()) for p in strategy.model.parameters()))

    def before_training_iteration(self, strategy, *a, **kw):
        super().before_training_iteration(strategy, *a, **kw)
        self.ks.append(strategy.model.current_k())


@pytest.mark.parametrize("strategy_name,kw", [("Naive", {}), ("EWC", {"ewc_lambda": 10.0})])
def test_plugin_keeps_constraints_in_stock_strategies(tiny_benchmark, strategy_name, kw):
    torch.manual_seed(0)
    model = SDMLP(16, 4, n_neurons=32, k=4, gaba_switch_activations=None)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = _Recorder(grad_clip_norm=1.0, gaba_switch_fraction=0.5)
    strat = _strategy(strategy_name, model, opt, [rec], **kw)
    before = model.addresses.weight.detach().clone()
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    res = strat.eval(tiny_benchmark.test_stream)
    assert not torch.equal(before, model.addresses.weight)
    assert len(rec.norms) == 2 * 2 * 3  # 2 exps x 2 epochs x ceil(40 / 16) iterations
    for n in rec.norms:
        torch.testing.assert_close(n, torch.ones(32))
    assert min(rec.mins) >= 0.0
    # T from the first experience: ceil(0.5 * 2 epochs * 40 samples) = 40
    assert model.top_k.gaba_switch_activations == 40
    assert int(model.top_k.activation_counts.sum()) > 0
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")]
    assert acc and 0.0 <= acc[0] <= 1.0


def test_without_plugin_constraints_drift(tiny_benchmark):
    torch.manual_seed(0)
    model = SDMLP(16, 4, n_neurons=32, k=4, gaba_switch_activations=None)
    strat = _strategy("Naive", model, torch.optim.SGD(model.parameters(), lr=0.5), [])
    strat.train(tiny_benchmark.train_stream[0])
    assert not torch.allclose(model.addresses.weight.norm(dim=1), torch.ones(32))


def test_k_annealing_advances_by_step_across_experiences(tiny_benchmark):
    torch.manual_seed(0)
    model = TopKMLP(16, 4, n_neurons=30, k=2, k_transition_epochs=3)
    rec = _Recorder()
    rec.after_update = lambda *a, **k: None  # TopKMLP has no addresses to record
    strat = _strategy("Naive", model, torch.optim.SGD(model.parameters(), lr=0.1), [rec])
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    # 4 epochs of 3 iterations: k(e) = 30 - 28 e / 3 at e = 0, 1/3, 2/3, 1, ...
    expected = [max(2, int(30 - 28 * (i / 3) / 3)) for i in range(12)]
    assert rec.ks == expected
    assert rec.epochs_done == 4 and model.current_k() == 2


def test_momentum_warning_names_stale_momentum(tiny_benchmark):
    model = SDMLP(16, 4, n_neurons=16, k=2)
    strat = _strategy("Naive", model, torch.optim.Adam(model.parameters()), [SDMPlugin()])
    with pytest.warns(StaleMomentumWarning, match="stale"):
        strat.train(tiny_benchmark.train_stream[0])
    model = SDMLP(16, 4, n_neurons=16, k=2)
    strat = _strategy("Naive", model, torch.optim.SGD(model.parameters(), lr=0.1), [SDMPlugin()])
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleMomentumWarning)
        strat.train(tiny_benchmark.train_stream[0])


def test_plugin_rejects_bad_arguments_and_models(tiny_benchmark):
    with pytest.raises(ValueError, match="grad_clip_norm must be > 0"):
        SDMPlugin(grad_clip_norm=0)
    with pytest.raises(ValueError, match="gaba_switch_fraction must be > 0"):
        SDMPlugin(gaba_switch_fraction=-1)
    with pytest.raises(TypeError, match="grad_clip_norm must be a number"):
        SDMPlugin(grad_clip_norm="1")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    strat = _strategy("Naive", model, torch.optim.SGD(model.parameters(), lr=0.1), [SDMPlugin()])
    with pytest.raises(ValueError, match="no SDM module"):
        strat.train(tiny_benchmark.train_stream[0])


def test_grad_clipping_limits_the_step():
    model = SDMLP(16, 4, n_neurons=16, k=2, positive_weights=False, gaba_switch_activations=None)

    class _S:
        pass

    s = _S()
    s.model = model
    for p in model.parameters():
        p.grad = torch.full_like(p, 10.0)
    SDMPlugin(grad_clip_norm=1.0).before_update(s)
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    torch.testing.assert_close(total, torch.tensor(1.0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["sdmlp", "topk", "sdmlp_ewc", "sdmlp_sgdm", "sdmlp_adam"])
def test_registry_rows_train(tiny_benchmark, name):
    method = S.get_method(name)
    hp = S.resolve_hparams(method, "tiny", PROTOCOL)
    hp.update(n_neurons=32, train_mb_size=16)
    ctx = S.MethodContext(benchmark=INFO, hparams=hp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleMomentumWarning)
        strat = S.build_strategy(method, ctx)
        for exp in tiny_benchmark.train_stream:
            strat.train(exp)
    res = strat.eval(tiny_benchmark.test_stream)
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")]
    assert acc and 0.0 <= acc[0] <= 1.0
    assert type(strat).__name__ == method.strategy.rsplit(".", 1)[-1]
    opt = strat.optimizer
    expected = {"sdmlp": ("SGD", 0.0), "topk": ("SGD", 0.0), "sdmlp_ewc": ("SGD", 0.0),
                "sdmlp_sgdm": ("SGD", 0.9), "sdmlp_adam": ("Adam", None)}[name]
    assert type(opt).__name__ == expected[0]
    if expected[1] is not None:
        assert opt.param_groups[0]["momentum"] == expected[1]


def test_registry_rows_settings_and_benchmarks():
    for name in ("sdmlp", "topk", "sdmlp_ewc", "sdmlp_sgdm", "sdmlp_adam"):
        m = S.get_method(name)
        assert set(m.benchmarks) == {"split_mnist_class", "split_cifar10_class"}
    hp = S.get_method("sdmlp").hparams
    assert (hp["optimizer"], hp["lr"], hp["momentum"], hp["train_mb_size"], hp["k"]) == ("sgd", 0.05, 0.0, 128, 10)
    # the MNIST Normalize of our benchmark is undone: the model sees [0, 1] pixels
    info = BenchmarkInfo("split_mnist_class", (1, 28, 28), 10, 5, "class", "x")
    hp = S.resolve_hparams(S.get_method("sdmlp"), "split_mnist_class", {"train_epochs": 1})
    model = S.get_method("sdmlp").model(S.MethodContext(benchmark=info, hparams=hp))
    assert isinstance(model, SDMLP) and model.input_mean is not None and model.n_neurons == 1000
    # an absolute GABA T from a preset goes to the model and disables the plugin's fraction
    hp["gaba_switch_activations"] = 5_000_000
    ctx = S.MethodContext(benchmark=info, hparams=hp)
    assert S.get_method("sdmlp").model(ctx).top_k.gaba_switch_activations == 5_000_000
    assert S.get_method("sdmlp").plugins(ctx)[0].gaba_switch_fraction is None
    task_info = BenchmarkInfo("t", (1, 28, 28), 10, 5, "task", "t")
    with pytest.raises(ValueError, match="single-head"):
        S.get_method("sdmlp").model(S.MethodContext(benchmark=task_info, hparams=hp))


def test_sdm_paper_preset_reaches_the_models():
    from reproduce.presets import get_preset

    proto = get_preset("sdm_paper")["benchmarks"]["split_mnist_class"]
    info = BenchmarkInfo("split_mnist_class", (1, 28, 28), 10, 5, "class", "x")
    hp = S.resolve_hparams(S.get_method("sdmlp"), "split_mnist_class", proto)
    assert (hp["train_epochs"], hp["lr"], hp["train_mb_size"]) == (500, 0.05, 128)
    ctx = S.MethodContext(benchmark=info, hparams=hp)
    assert S.get_method("sdmlp").model(ctx).top_k.gaba_switch_activations == 5_000_000
    hp = S.resolve_hparams(S.get_method("topk"), "split_mnist_class", proto)
    topk = S.get_method("topk").model(S.MethodContext(benchmark=info, hparams=hp))
    assert (topk.k_max, topk.k_min, topk.k_transition_epochs) == (1000, 10, 200.0)
    # quick/full presets: the transition is 0.4 of one experience's epochs
    hp = S.resolve_hparams(S.get_method("topk"), "split_mnist_class", {"train_epochs": 10})
    assert S.get_method("topk").model(S.MethodContext(benchmark=info, hparams=hp)).k_transition_epochs == 4.0
