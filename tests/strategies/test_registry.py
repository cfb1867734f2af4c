"""The method registry and the baseline rows."""
from __future__ import annotations

import pytest
import torch

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo

INFO = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=4, n_experiences=2,
                     scenario="class", label="tiny")
PROTOCOL = {"optimizer": "sgd", "lr": 0.1, "train_epochs": 1, "train_mb_size": 16,
            "eval_mb_size": 64, "hidden_sizes": [8]}


def test_baselines_registered():
    assert {"naive", "ewc", "si", "joint"} <= set(S.available_methods())


def test_unknown_method_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown method 'nope'; valid methods: .*naive"):
        S.get_method("nope")


def test_register_rejects_duplicates_and_non_methods():
    with pytest.raises(ValueError, match="already registered"):
        S.register(S.get_method("naive"))
    with pytest.raises(TypeError, match="must be a Method"):
        S.register("naive")


def test_hparams_merge_order():
    m = S.Method(name="x", description="", model=S.default_model, optimizer=S.default_optimizer,
                 hparams={"lr": 0.5, "a": 1}, hparams_by_benchmark={"b1": {"a": 2}})
    assert S.resolve_hparams(m, "b1", {"lr": 0.1, "c": 3}) == {"lr": 0.5, "a": 2, "c": 3}
    assert S.resolve_hparams(m, "b2", {"lr": 0.1})["a"] == 1


@pytest.mark.parametrize("name", ["naive", "ewc", "si", "joint"])
def test_baseline_strategy_trains(tiny_benchmark, name):
    method = S.get_method(name)
    ctx = S.MethodContext(benchmark=INFO, hparams=S.resolve_hparams(method, "tiny", PROTOCOL))
    strat = S.build_strategy(method, ctx)
    assert type(strat).__name__ == method.strategy.rsplit(".", 1)[-1]
    before = [p.detach().clone() for p in strat.model.parameters()]
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    res = strat.eval(tiny_benchmark.test_stream)
    assert any(not torch.equal(a, b) for a, b in zip(before, strat.model.parameters()))
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")]
    assert acc and 0.0 <= acc[0] <= 1.0


def test_default_model_picks_multi_head_and_cnn():
    from avalanche.models import MultiTaskModule

    task_info = BenchmarkInfo("t", (1, 28, 28), 10, 5, "task", "t")
    ctx = S.MethodContext(benchmark=task_info, hparams={"hidden_sizes": [8]})
    assert isinstance(S.default_model(ctx), MultiTaskModule)
    cifar = BenchmarkInfo("c", (3, 32, 32), 10, 5, "class", "c")
    model = S.default_model(S.MethodContext(benchmark=cifar, hparams={"channels": [4, 8], "hidden_size": 16}))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_default_optimizer_rejects_unknown():
    ctx = S.MethodContext(benchmark=INFO, hparams={"optimizer": "rmsprop", "lr": 0.1})
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam'"):
        S.default_optimizer(torch.nn.Linear(2, 2), ctx)


@pytest.mark.parametrize("name, hp", [("adam", {}), ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4})])
def test_default_optimizer_is_fused_and_follows_the_loop(name, hp):
    """The fused optimizer (the default) takes the same steps as torch's
    per-tensor loop (fused_optimizer=False), up to float rounding."""
    ctx = lambda fused: S.MethodContext(benchmark=INFO, hparams={"optimizer": name, "lr": 0.01, **hp,
                                                                 "fused_optimizer": fused})
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    oa, ob = S.default_optimizer(a, ctx(True)), S.default_optimizer(b, ctx(False))
    fast = "fused" if name == "adam" else "foreach"
    assert oa.param_groups[0][fast] is True and not ob.param_groups[0][fast]
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(5):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
    assert not torch.equal(a[0].weight, torch.nn.Linear(6, 5).weight)


@pytest.mark.parametrize("name, hp", [("adam", {}), ("sgd", {"momentum": 0.9})])
def test_default_optimizer_takes_new_heads_with_state_present(name, hp):
    """Avalanche adds a new head's parameters to an optimizer that already
    holds momentum state for the old ones (multi-head task-IL); the default
    optimizer must step with that mix (torch's fused SGD cannot)."""
    from avalanche.models.dynamic_optimizers import update_optimizer

    ctx = S.MethodContext(benchmark=INFO, hparams={"optimizer": name, "lr": 0.01, **hp})
    body, head1, head2 = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    opt = S.default_optimizer(torch.nn.ModuleList([body, head1]), ctx)
    x = torch.randn(5, 4)
    head1(body(x)).sum().backward()
    opt.step()
    old = {n: p for n, p in torch.nn.ModuleList([body, head1]).named_parameters()}
    new = {n: p for n, p in torch.nn.ModuleList([body, head1, head2]).named_parameters()}
    update_optimizer(opt, new, old, reset_state=False)
    opt.zero_grad()
    (head1(body(x)).sum() + head2(body(x)).sum()).backward()
    before = head2.weight.detach().clone()
    opt.step()
    assert not torch.equal(head2.weight, before)
