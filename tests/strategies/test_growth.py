"""SynapseGrowthPlugin: growth, consolidation, cap, pruning, checkpoint, metrics."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import EWC, Naive, SynapticIntelligence
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_sparse.layers import KWinners, SparseWeights, SparseWeights2d
from avalanche_sparse.strategies import SynapseGrowthPlugin
from avalanche_sparse.strategies.growth import INITIAL_OWNER, NO_OWNER


class TinySparse(nn.Module):
    """16 -> 32 (sparse, k-WTA with boosting) -> 32 (sparse, k-WTA) -> n_out (dense)."""

    def __init__(self, n_out: int = 4, density: float = 0.25, boost: float = 1.0, seed: int = 0):
        super().__init__()
        self.fc1 = SparseWeights(nn.Linear(16, 32), sparsity=1 - density, seed=seed)
        self.kw1 = KWinners(32, percent_on=0.25, boost_strength=boost, duty_cycle_period=64)
        self.fc2 = SparseWeights(nn.Linear(32, 32), sparsity=1 - density, seed=seed + 1)
        self.kw2 = KWinners(32, percent_on=0.25, boost_strength=boost, duty_cycle_period=64)
        self.out = nn.Linear(32, n_out)

    def forward(self, x):
        x = self.kw1(self.fc1(x.flatten(1)))
        return self.out(self.kw2(self.fc2(x)))


def _evaluator(loggers=()):
    return EvaluationPlugin(accuracy_metrics(stream=True), loggers=list(loggers))


def _strategy(model, plugins, cls=Naive, optimizer=None, evaluator=None, **kw):
    torch.manual_seed(0)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    return cls(model=model, optimizer=opt, criterion=nn.CrossEntropyLoss(), train_mb_size=16,
               train_epochs=2, eval_mb_size=64, plugins=plugins,
               evaluator=evaluator or _evaluator(), **kw)


def _masks(model):
    return {n: m.zero_mask.clone() for n, m in model.named_modules() if hasattr(m, "zero_mask")}


def _fake_strategy(model, batches, optimizer=None):
    return SimpleNamespace(model=model, dataloader=batches, device=torch.device("cpu"),
                           _criterion=nn.CrossEntropyLoss(), optimizer=optimizer,
                           clock=SimpleNamespace(train_iterations=0), evaluator=None)


def _batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, 4, (8,), generator=g),
             torch.zeros(8, dtype=torch.long)] for _ in range(n)]


def test_grows_budget_after_first_experience(tiny_benchmark):
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_count=20, max_density=0.5)
    strat = _strategy(model, [plugin])
    initial = _masks(model)
    exp0, exp1 = tiny_benchmark.train_stream
    strat.train(exp0)
    assert all(torch.equal(initial[n], m) for n, m in _masks(model).items())  # no growth at exp 0
    strat.train(exp1)
    for name, zm in _masks(model).items():
        new = initial[name] & ~zm
        assert int(new.sum()) == 20
        assert not (zm & ~initial[name]).any()  # nothing pruned
        own = plugin.owner[name]
        assert torch.equal(own == 1, new)
        assert torch.equal(own == INITIAL_OWNER, ~initial[name])
        assert torch.equal(own == NO_OWNER, zm)
    assert [h["grown"] for h in plugin.history] == [{"fc1": 0, "fc2": 0}, {"fc1": 20, "fc2": 20}]
    assert plugin.history[1]["frozen"] == {n: int((~initial[n]).sum()) for n in initial}


def test_grow_on_first_and_fraction_budget(tiny_benchmark):
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_fraction=0.05, grow_on_first=True, max_density=0.5,
                                 criterion="random")
    strat = _strategy(model, [plugin])
    before = {n: int((~m).sum()) for n, m in _masks(model).items()}
    strat.train(tiny_benchmark.train_stream[0])
    after = {n: int((~m).sum()) for n, m in _masks(model).items()}
    assert after == {"fc1": before["fc1"] + round(0.05 * 512), "fc2": before["fc2"] + round(0.05 * 1024)}
    assert plugin.history[0]["frozen"] == {"fc1": 0, "fc2": 0}  # nothing consolidated at the start


def test_gradient_criterion_picks_largest_gradients_and_leaves_state_alone():
    model = TinySparse()
    batches = _batches(3)
    plugin = SynapseGrowthPlugin(grow_count=7, grad_batches=2, grow_on_first=True, max_density=0.5)
    # expected: |sum of the gradients of the first 2 batches| among the pruned entries
    ref = TinySparse()
    ref.load_state_dict(model.state_dict())
    ref.train()
    for x, y, _ in batches[:2]:
        nn.functional.cross_entropy(ref(x), y).backward()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    iterations = model.kw1._iterations
    model.eval()
    strat = _fake_strategy(model, batches)
    initial = _masks(model)
    plugin.before_training_exp(strat)
    for name, layer in (("fc1", ref.fc1), ("fc2", ref.fc2)):
        score = layer.module.weight.grad.abs().masked_fill(~initial[name], -1.0)
        expected = torch.zeros_like(initial[name]).view(-1)
        expected[score.view(-1).topk(7).indices] = True
        grown = (initial[name] & ~getattr(model, name).zero_mask).view(-1)
        assert torch.equal(grown, expected)
    # buffers other than the masks, Python counters, modes and .grad untouched
    for k, v in model.named_buffers():
        if not k.endswith("zero_mask"):
            assert torch.equal(v, buffers[k]), k
    assert model.kw1._iterations == iterations
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_random_criterion_is_seeded():
    def grow(seed):
        model = TinySparse()
        plugin = SynapseGrowthPlugin(grow_count=10, criterion="random", grow_on_first=True,
                                     max_density=0.5, seed=seed)
        plugin.before_training_exp(_fake_strategy(model, []))
        return _masks(model)

    a, b, c = grow(1), grow(1), grow(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_zero_init_keeps_function_and_clears_optimizer_state():
    model = TinySparse()
    model.eval()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y, _ = _batches(1)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    model.fc1.rezero_weights()
    model.fc2.rezero_weights()
    out = model(x)
    plugin = SynapseGrowthPlugin(grow_count=30, grow_on_first=True, max_density=0.5)
    initial = _masks(model)
    plugin.before_training_exp(_fake_strategy(model, _batches(2), optimizer=opt))
    assert torch.equal(model(x), out)  # new synapses start at zero
    for name in ("fc1", "fc2"):
        grown = initial[name] & ~getattr(model, name).zero_mask
        st = opt.state[getattr(model, name).module.weight]
        assert grown.sum() == 30
        assert (st["exp_avg"][grown] == 0).all() and (st["exp_avg_sq"][grown] == 0).all()
        assert (st["exp_avg"][~initial[name]] != 0).any()


def test_uniform_init_is_bounded():
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_count=50, grow_on_first=True, max_density=0.5,
                                 init="uniform", init_scale=0.03, criterion="random")
    initial = _masks(model)
    plugin.before_training_exp(_fake_strategy(model, []))
    for name in ("fc1", "fc2"):
        w = getattr(model, name).module.weight.detach()
        new = w[initial[name] & ~getattr(model, name).zero_mask]
        assert new.abs().max() <= 0.03 and (new != 0).all()


@pytest.mark.parametrize("cls,kw", [(Naive, {}), (EWC, {"ewc_lambda": 10.0}),
                                    (SynapticIntelligence, {"si_lambda": 1.0})])
def test_frozen_weights_bit_identical_with_adam_and_boosting(tiny_benchmark, cls, kw):
    model = TinySparse(boost=1.5)
    plugin = SynapseGrowthPlugin(grow_count=40, max_density=0.5)
    strat = _strategy(model, [plugin], cls=cls, **kw)
    exp0, exp1 = tiny_benchmark.train_stream
    strat.train(exp0)
    old = {n: getattr(model, n).module.weight.detach().clone() for n in ("fc1", "fc2")}
    old_masks = _masks(model)
    duty = model.kw1.duty_cycle.clone()
    strat.train(exp1)
    for name in ("fc1", "fc2"):
        w = getattr(model, name).module.weight.detach()
        kept = ~old_masks[name]
        assert torch.equal(w[kept], old[name][kept])  # consolidated: bit-identical
        new = old_masks[name] & ~getattr(model, name).zero_mask
        assert (w[new] != 0).any()  # the new synapses learned
        assert (w[getattr(model, name).zero_mask] == 0).all()
    assert not torch.equal(model.kw1.duty_cycle, duty)  # boosting kept running
    res = strat.eval(tiny_benchmark.test_stream)
    acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")][0]
    assert 0.0 <= acc <= 1.0


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_scale_consolidation_scales_the_step(opt_name):
    torch.manual_seed(0)
    model = TinySparse()
    twin = TinySparse()
    twin.load_state_dict(model.state_dict())

    def make(m):
        if opt_name == "sgd":
            return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        return torch.optim.Adam(m.parameters(), lr=1e-2)

    plugin = SynapseGrowthPlugin(grow_count=5, consolidation="scale", lr_scale=0.25, max_density=0.5,
                                 criterion="random")
    strat = _fake_strategy(model, [])
    plugin.before_training_exp(strat)
    plugin.after_training_exp(strat)
    plugin.before_training_exp(strat)  # experience 1: initial synapses consolidated
    twin.fc1.zero_mask.copy_(model.fc1.zero_mask)
    twin.fc2.zero_mask.copy_(model.fc2.zero_mask)
    opts = make(model), make(twin)
    start = model.fc1.module.weight.detach().clone()
    x, y, _ = _batches(1)[0]
    for m, o in zip((model, twin), opts):  # one step, same loss and gradients on both
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
    plugin.after_backward(strat)
    plugin.before_update(strat)
    opts[0].step()
    plugin.after_update(strat)
    opts[1].step()
    cons = plugin.owner["fc1"] == INITIAL_OWNER
    grown = plugin.owner["fc1"] == 1
    d_model = model.fc1.module.weight.detach() - start
    d_twin = twin.fc1.module.weight.detach() - start
    torch.testing.assert_close(d_model[cons], 0.25 * d_twin[cons])
    torch.testing.assert_close(d_model[grown], d_twin[grown])
    assert d_twin[cons].abs().max() > 0


def test_cap_limits_connectivity(tiny_benchmark):
    model = TinySparse(density=0.25)
    plugin = SynapseGrowthPlugin(grow_fraction=0.2, max_density=0.4, grow_on_first=True,
                                 criterion="random")
    strat = _fake_strategy(model, [])
    for _ in range(3):
        plugin.before_training_exp(strat)
        plugin.after_training_exp(strat)
    conn = plugin.connectivity(model)
    assert conn["fc1"] == int(0.4 * 512) / 512 and conn["fc2"] == int(0.4 * 1024) / 1024
    assert [h["grown"]["fc1"] for h in plugin.history] == [204 - 128, 0, 0]  # budget 102 > room 76
    assert [h["grown"]["fc2"] for h in plugin.history] == [409 - 256, 0, 0]


def test_prune_weakest_new_synapses(tiny_benchmark):
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_count=40, max_density=0.5, prune_fraction=0.25)
    strat = _strategy(model, [plugin])
    exp0, exp1 = tiny_benchmark.train_stream
    strat.train(exp0)
    grown_at = {}

    class Probe(SynapseGrowthPlugin.__mro__[1]):  # SupervisedPlugin
        def before_training_exp(self, strategy, *a, **k):
            grown_at.update({n: plugin.owner[n] == 1 for n in plugin.owner})

        def after_training_iteration(self, strategy, *a, **k):
            grown_at["w"] = {n: getattr(model, n).module.weight.detach().clone() for n in plugin.owner}

    strat.plugins.append(Probe())
    strat.train(exp1)
    assert plugin.history[1]["pruned"] == {"fc1": 10, "fc2": 10}
    for name in ("fc1", "fc2"):
        grown = grown_at[name]
        assert int(grown.sum()) == 40
        survivors = plugin.owner[name] == 1
        pruned = grown & ~survivors
        assert int(pruned.sum()) == 10
        w_end = grown_at["w"][name]
        assert w_end[pruned].abs().max() <= w_end[survivors].abs().min()
        layer = getattr(model, name)
        assert layer.zero_mask[pruned].all() and (layer.module.weight[pruned] == 0).all()
        assert (plugin.owner[name][pruned] == NO_OWNER).all()
    fr = plugin.history[1]["owned_fraction"]
    assert sum(fr.values()) == pytest.approx(1.0) and fr["exp1"] > 0 and fr["exp0"] == 0


def _three_task_benchmark():
    from avalanche_sparse.benchmarks import tensor_split_benchmark

    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(96) % 6, torch.arange(48) % 6
    x_tr = torch.randn(96, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(48, 1, 4, 4, generator=g) + y_te.view(-1, 1, 1, 1)
    return tensor_split_benchmark(x_tr, y_tr, x_te, y_te, 3, scenario="class")


def test_checkpoint_round_trip_continues_identically():
    bench = _three_task_benchmark()
    make_plugin = lambda: SynapseGrowthPlugin(grow_count=15, max_density=0.5, criterion="random",
                                              prune_fraction=0.2, seed=3)
    model, plugin = TinySparse(n_out=6), make_plugin()
    strat = _strategy(model, [plugin])
    strat.train(bench.train_stream[0])
    strat.train(bench.train_stream[1])
    ckpt = {"model": {k: v.clone() for k, v in model.state_dict().items()}, "growth": plugin.state_dict()}
    ckpt = torch.load(_save(ckpt), weights_only=False)

    model2, plugin2 = TinySparse(n_out=6, seed=7), make_plugin()
    model2.load_state_dict(ckpt["model"])
    plugin2.load_state_dict(ckpt["growth"])
    assert plugin2.experience_index == 2 and len(plugin2.history) == 2
    assert all(torch.equal(plugin.owner[n], plugin2.owner[n]) for n in plugin.owner)

    strat2 = _strategy(model2, [plugin2])
    strat.optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    strat2.optimizer = torch.optim.SGD(model2.parameters(), lr=0.05)
    for s in (strat, strat2):
        torch.manual_seed(1)
        s.train(bench.train_stream[2])
    for n in plugin.owner:
        assert torch.equal(plugin.owner[n], plugin2.owner[n])
        assert (plugin.owner[n] == 2).sum() == 15 - 3
    assert all(torch.equal(a, b) for a, b in zip(_masks(model).values(), _masks(model2).values()))


def _save(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_load_state_dict_rejects_mismatched_model():
    plugin = SynapseGrowthPlugin(grow_count=5, max_density=0.5)
    plugin.before_training_exp(_fake_strategy(TinySparse(), []))
    state = plugin.state_dict()
    other = SynapseGrowthPlugin(grow_count=5, max_density=0.5)
    other.load_state_dict(state)

    class OneLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = SparseWeights(nn.Linear(16, 32), sparsity=0.75)

        def forward(self, x):
            return self.fc1(x.flatten(1))

    with pytest.raises(ValueError, match="does not have.*fc2"):
        other.before_training_exp(_fake_strategy(OneLayer(), []))
    with pytest.raises(ValueError, match="version 1"):
        other.load_state_dict({"owner": {}})


def test_conv_layers_grow():
    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = SparseWeights2d(nn.Conv2d(1, 4, 3, padding=1), sparsity=0.8, seed=0)
            self.out = nn.Linear(64, 4)

        def forward(self, x):
            return self.out(torch.relu(self.conv(x)).flatten(1))

    model = Conv()
    plugin = SynapseGrowthPlugin(grow_count=4, grow_on_first=True, max_density=0.5)
    before = int((~model.conv.zero_mask).sum())
    plugin.before_training_exp(_fake_strategy(model, _batches(2)))
    assert int((~model.conv.zero_mask).sum()) == before + 4
    assert plugin.owner["conv"].shape == model.conv.module.weight.shape


def test_tensorboard_metrics(tiny_benchmark, tmp_path):
    from avalanche.logging import TensorboardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorboardLogger(tb_log_dir=str(tmp_path))
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_count=20, max_density=0.5, prune_fraction=0.5)
    strat = _strategy(model, [plugin], evaluator=_evaluator([tb]))
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    strat.eval(tiny_benchmark.test_stream)
    tb.writer.flush()
    tb.writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("Growth/connectivity/fc1", "Growth/connectivity/all", "Growth/grown/fc2",
                "Growth/grown/all", "Growth/frozen/all", "Growth/pruned/fc1",
                "Growth/owned_fraction/initial", "Growth/owned_fraction/exp1"):
        assert tag in tags, tag
    grown = {e.step: e.value for e in acc.Scalars("Growth/grown/all")}
    assert grown == {0: 0.0, 1: 40.0}
    pruned = {e.step: e.value for e in acc.Scalars("Growth/pruned/fc1")}
    assert pruned == {0: 0.0, 1: 10.0}
    frozen = {e.step: e.value for e in acc.Scalars("Growth/frozen/all")}
    assert frozen[1] == sum(plugin.history[1]["frozen"].values()) > 0
    conn = [e.value for e in acc.Scalars("Growth/connectivity/fc1")]
    assert conn[0] == pytest.approx(0.25) and conn[-1] == pytest.approx((128 + 10) / 512)
    owned = acc.Scalars("Growth/owned_fraction/exp1")[-1].value
    assert owned == pytest.approx(20 / (128 + 256 + 20))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw,match", [
    ({"max_density": 0.0}, r"max_density .*\(0, 1\]"),
    ({"max_density": 1.5}, r"max_density .*\(0, 1\]"),
    ({"grow_fraction": 0.2, "max_density": 0.1}, "exceeds the connectivity cap"),
    ({"grow_fraction": 0.0}, r"grow_fraction must be in \(0, 1\]"),
    ({"grow_count": 0}, "grow_count must be an integer >= 1"),
    ({"grow_count": 3, "grow_fraction": 0.01}, "not both"),
    ({"criterion": "magnitude"}, "criterion must be one of 'gradient', 'random'"),
    ({"consolidation": "ewc"}, "consolidation must be one of"),
    ({"lr_scale": 1.0}, r"lr_scale must be in \(0, 1\)"),
    ({"prune_fraction": 1.0}, r"prune_fraction must be in \[0, 1\)"),
    ({"init": "normal"}, "init must be one of"),
    ({"init_scale": 0.0}, "init_scale must be"),
    ({"grad_batches": 0}, "grad_batches must be"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        SynapseGrowthPlugin(**kw)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="max_density"):
        SynapseGrowthPlugin(max_density="0.1")
    with pytest.raises(TypeError):
        SynapseGrowthPlugin(0.01)  # keyword-only
    with pytest.raises(TypeError, match="init_scale"):
        SynapseGrowthPlugin(init_scale="0.1")


def test_model_without_sparse_layers(tiny_benchmark):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    strat = _strategy(model, [SynapseGrowthPlugin()])
    with pytest.raises(ValueError, match="needs a model with at least one SparseWeightsBase layer.*Sequential"):
        strat.train(tiny_benchmark.train_stream[0])


def test_count_budget_beyond_cap_and_dense_start():
    plugin = SynapseGrowthPlugin(grow_count=300, max_density=0.5)  # fc1 cap: 256 of 512
    with pytest.raises(ValueError, match="budget of 300 synapses.*'fc1' exceeds its connectivity cap"):
        plugin.before_training_exp(_fake_strategy(TinySparse(), []))
    plugin = SynapseGrowthPlugin(grow_count=5, max_density=0.2)
    with pytest.raises(ValueError, match="starts with density 0.25.*above the connectivity cap"):
        plugin.before_training_exp(_fake_strategy(TinySparse(density=0.25), []))


def test_freeze_zeroes_gradients_of_consolidated_synapses():
    model = TinySparse()
    plugin = SynapseGrowthPlugin(grow_count=5, max_density=0.5, criterion="random")
    strat = _fake_strategy(model, [])
    plugin.before_training_exp(strat)
    plugin.after_training_exp(strat)
    plugin.before_training_exp(strat)
    x, y, _ = _batches(1)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    plugin.after_backward(strat)
    for name in ("fc1", "fc2"):
        g = getattr(model, name).module.weight.grad
        own = plugin.owner[name]
        assert (g[own == INITIAL_OWNER] == 0).all()
        assert (g[own == NO_OWNER] != 0).any()  # untouched elsewhere (dense gradient)


# ------------------------------------------------------------------ registry
def test_growth_schedule():
    from avalanche_sparse.strategies.growth import growth_schedule

    d0, g = growth_schedule(0.1, 5, 0.4)
    assert d0 == pytest.approx(0.06) and g == pytest.approx(0.01)
    assert d0 + 4 * g == pytest.approx(0.1)
    assert growth_schedule(0.1, 1, 0.5)[0] == 0.1
    with pytest.raises(ValueError, match="growth_share"):
        growth_schedule(0.1, 5, 1.0)
    with pytest.raises(ValueError, match="n_experiences"):
        growth_schedule(0.1, 0, 0.5)


def test_sparse_growth_not_registered_without_sparse_mlp_model():
    import avalanche_sparse.models as models
    from avalanche_sparse.strategies import available_methods
    from avalanche_sparse.strategies.growth import register_sparse_growth

    if hasattr(models, "SparseMLP"):
        assert "sparse_growth" in available_methods()
    else:
        assert register_sparse_growth() is None
        assert "sparse_growth" not in available_methods()


def test_sparse_growth_registers_on_a_sparse_mlp(monkeypatch, tiny_benchmark):
    """With a stand-in SparseMLP and sparse_mlp recipe, sparse_growth builds the
    model at the initial density, grows back to sparse_mlp's and trains."""
    import avalanche_sparse.models as models
    import avalanche_sparse.strategies as S
    from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
    from avalanche_sparse.strategies import growth as G

    def sparse_model(ctx):
        return TinySparse(density=float(ctx.hparams["weight_sparsity_fc"]))

    fake = S.Method(name="sparse_mlp", description="stand-in", model=sparse_model,
                    optimizer=S.default_optimizer, hparams={"weight_sparsity_fc": 0.5, "lr": 0.02})
    monkeypatch.setattr(models, "SparseMLP", TinySparse, raising=False)
    monkeypatch.setitem(S.REGISTRY, "sparse_mlp", fake)
    if "sparse_growth" in S.REGISTRY:
        monkeypatch.delitem(S.REGISTRY, "sparse_growth")
    method = G.register_sparse_growth()
    monkeypatch.setitem(S.REGISTRY, "sparse_growth", method)  # removed again after the test
    assert S.get_method("sparse_growth") is method
    assert method.benchmarks == ("permuted_mnist", "split_mnist_class", "split_mnist_task")

    info = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=4, n_experiences=2,
                         scenario="class", label="tiny")
    protocol = {"optimizer": "adam", "lr": 1e-3, "train_epochs": 1, "train_mb_size": 16,
                "eval_mb_size": 64, "hidden_sizes": [8]}
    ctx = S.MethodContext(benchmark=info, hparams=S.resolve_hparams(method, "tiny", protocol))
    strat = S.build_strategy(method, ctx)
    assert strat.optimizer.param_groups[0]["lr"] == 0.02  # sparse_mlp's hparams win over the protocol
    plugin = [p for p in strat.plugins if isinstance(p, SynapseGrowthPlugin)][0]
    assert plugin.max_density == 0.5 and plugin.grow_fraction == pytest.approx(0.25)
    conn0 = plugin.connectivity(strat.model)
    assert conn0["fc1"] == pytest.approx(0.25)  # initial density d * (1 - share)
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    final = plugin.connectivity(strat.model)
    reference = sparse_model(S.MethodContext(benchmark=info, hparams={"weight_sparsity_fc": 0.5}))
    for name in ("fc1", "fc2"):  # equal final connectivity to the sparse_mlp recipe
        assert final[name] == pytest.approx(float((~getattr(reference, name).zero_mask).float().mean()))
