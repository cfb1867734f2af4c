"""ComplexSynapseSGD / ComplexSynapseAdam: equations, torch parity, state
handling, bad input, non-finite gradients and use inside Avalanche.

The oracle below is a deliberately slow, per-element, pure-Python rendering of
the published update (Benna & Fusi 2016, as implemented by the reference code
GMvandeVen/complex-synapses); it shares no code with the optimizers.
"""
from __future__ import annotations

import copy
import io
import math
import warnings
from collections import defaultdict

import pytest
import torch
from torch import nn

from avalanche_sparse.optim import (
    ComplexSynapseAdam,
    ComplexSynapseSGD,
    beaker_chain,
)

OPTIMIZERS = [ComplexSynapseSGD, ComplexSynapseAdam]


# --------------------------------------------------------------------- oracle
def oracle(kind, w0, curv, target, noise, *, lr, n, alpha, beta, timescale,
           betas=(0.9, 0.999), eps=1e-8):
    """Per-element loop over the published equations; returns, per element,
    the list [w, u_2, ..., u_n] after ``len(noise)`` steps. The gradient of
    element i at step t is curv[i] * (w_i - target[i]) + noise[t][i]."""
    if n >= 2:
        x = (beta / alpha) ** (1.0 / (2 * n - 2))
        cap = [x ** k for k in range(n)]
        tube = [x ** (-k) / alpha for k in range(n)]  # tube[k]: beaker k+1 -> k+2
    else:
        cap, tube = [1.0], [1.0 / beta]
    beta1, beta2 = betas
    levels = [[w] * n + [0.0] for w in w0]  # last entry: the leak, fixed at 0
    m = [0.0] * len(w0)
    v = [0.0] * len(w0)
    for t, noise_t in enumerate(noise):
        for i, u in enumerate(levels):
            grad = curv[i] * (u[0] - target[i]) + noise_t[i]
            if kind == "sgd":
                direction, eta = grad, lr
            else:
                m[i] = beta1 * m[i] + (1 - beta1) * grad
                v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
                direction = m[i] / (math.sqrt(v[i]) + eps)
                eta = lr * math.sqrt(1 - beta2 ** (t + 1)) / (1 - beta1 ** (t + 1))
            dt = eta if timescale == "reference" else 1.0
            u[0] = u[0] + (-eta * direction + (dt / cap[0]) * tube[0] * (u[1] - u[0]))
            for k in range(1, n):
                u[k] = u[k] + (dt / cap[k]) * (
                    tube[k - 1] * (u[k - 1] - u[k]) + tube[k] * (u[k + 1] - u[k])
                )
    return [u[:n] for u in levels]


def toy(seed=0, steps=30, dtype=torch.float64):
    """Parameters of three shapes, a separable quadratic loss and fixed noise."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (3,), ()]
    params = [nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]
    target = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    curv = [torch.rand(s, generator=g, dtype=dtype) + 0.5 for s in shapes]
    noise = [[0.3 * torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(steps)]
    return params, target, curv, noise


def set_toy_grads(params, target, curv, noise_t):
    for p, tg, c, z in zip(params, target, curv, noise_t):
        p.grad = c * (p.detach() - tg) + z


def flat(ts):
    return [float(v) for t in ts for v in t.detach().reshape(-1)]


ORACLE_CASES = [
    # kind, lr, n, alpha, beta, timescale
    ("sgd", 0.05, 1, 0.1, 2.0, "reference"),
    ("sgd", 0.05, 2, 0.1, 3.0, "reference"),
    ("sgd", 0.05, 5, 0.1, 3.0, "reference"),
    ("sgd", 0.05, 3, 4.0, 64.0, "iterations"),
    ("sgd", 0.05, 2, 1.0, 2.0, "iterations"),  # large rates: the non-lerp branch
    ("adam", 0.01, 1, 0.02, 0.5, "reference"),
    ("adam", 0.01, 4, 0.02, 0.5, "reference"),
    ("adam", 0.01, 3, 3.0, 50.0, "iterations"),
]


PATHS = {"foreach": {"foreach": True}, "single": {"foreach": False},
         "fused": {"fused": True}, "blocked": {"fused": False}}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("kind,lr,n,alpha,beta,timescale", ORACLE_CASES)
def test_matches_per_element_oracle(kind, lr, n, alpha, beta, timescale, path):
    params, target, curv, noise = toy()
    w0, c0, t0 = flat(params), flat(curv), flat(target)
    noise_flat = [flat(z) for z in noise]
    cls = ComplexSynapseSGD if kind == "sgd" else ComplexSynapseAdam
    opt = cls(params, lr=lr, n_beakers=n, alpha=alpha, beta=beta, timescale=timescale, **PATHS[path])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the large-rate case warns
        for z in noise:
            set_toy_grads(params, target, curv, z)
            opt.step()
    want = oracle(kind, w0, c0, t0, noise_flat, lr=lr, n=n, alpha=alpha, beta=beta, timescale=timescale)
    # got[i] = [w, u_2, ..., u_n] for element i, in the oracle's flat order
    got = []
    for p in params:
        b = opt.beakers(p).reshape(max(n, 1), -1)
        got.extend(b[:, j].tolist() for j in range(b.shape[1]))
    assert len(got) == len(want)
    for g_i, w_i in zip(got, want):
        assert g_i == pytest.approx(w_i, rel=1e-10, abs=1e-12)


# --------------------------------------------------------------------- chain
def test_beaker_chain_published_setting():
    ch = beaker_chain(5, 500, 2500)
    assert ch.ratio == pytest.approx(1.2228, abs=1e-4)
    assert [round(t) for t in ch.timescales] == [500, 748, 1118, 1672, 2500]
    for k in range(5):
        assert ch.capacities[k] == pytest.approx(ch.ratio ** k)
        assert ch.tube_widths[k] == pytest.approx(ch.ratio ** (-k) / 500)
    assert beaker_chain(1, 3.0, 7.0).timescales == (7.0,)
    assert beaker_chain(1, 3.0, 7.0).tube_widths == (1 / 7.0,)
    assert beaker_chain(0, 1.0, 1.0).capacities == ()


# --------------------------------------------------------------------- n = 0, 1
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        self.unused = nn.Linear(2, 2)  # never gets a gradient

    def forward(self, x):
        return self.body(x)


def mlp(seed=0):
    torch.manual_seed(seed)
    return MLP()


def batches(k, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(5, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(k)]


def train(model, opt, data):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in data:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"momentum": 0.8, "nesterov": True},
    ],
)
def test_zero_beakers_is_torch_sgd(kw, foreach):
    data = batches(6)
    m1, m2 = mlp(), mlp()
    train(m1, torch.optim.SGD(m1.parameters(), lr=0.1, foreach=foreach, **kw), data)
    train(m2, ComplexSynapseSGD(m2.parameters(), lr=0.1, n_beakers=0, foreach=foreach, **kw), data)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.01}, {"betas": (0.8, 0.99), "eps": 1e-6}])
def test_zero_beakers_is_torch_adam(kw, foreach):
    data = batches(6)
    m1, m2 = mlp(), mlp()
    train(m1, torch.optim.Adam(m1.parameters(), lr=0.01, foreach=foreach, **kw), data)
    train(m2, ComplexSynapseAdam(m2.parameters(), lr=0.01, n_beakers=0, foreach=foreach, **kw), data)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_one_beaker_is_decay_towards_zero():
    w0 = torch.randn(4, 3, dtype=torch.float64)
    for timescale, dt in [("reference", 0.5), ("iterations", 1.0)]:
        p = nn.Parameter(w0.clone())
        opt = ComplexSynapseSGD([p], lr=0.5, n_beakers=1, alpha=2.0, beta=10.0, timescale=timescale)
        for _ in range(7):
            p.grad = torch.zeros_like(p)
            opt.step()
        torch.testing.assert_close(p.detach(), w0 * (1 - dt / 10.0) ** 7, rtol=1e-12, atol=0)


def test_reference_time_step_is_iterations_with_rescaled_timescales():
    """With dt = lr, (alpha, beta) behave like (alpha/lr, beta/lr) iterations."""
    lr = 0.25
    runs = []
    for timescale, a, b in [("reference", 2.0, 40.0), ("iterations", 8.0, 160.0)]:
        p = nn.Parameter(torch.zeros(5, dtype=torch.float64))
        opt = ComplexSynapseSGD([p], lr=lr, n_beakers=4, alpha=a, beta=b, timescale=timescale)
        p.grad = torch.zeros_like(p)
        opt.step()  # beakers start at 0
        with torch.no_grad():
            p.add_(1.0)  # store a memory in the visible weight only
        for _ in range(50):
            p.grad = torch.zeros_like(p)
            opt.step()
        runs.append(opt.beakers(p))
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-12, atol=1e-15)
    assert 0 < runs[0][0, 0] < 1 and runs[0][-1, 0] > 0


# --------------------------------------------------------------------- paths & state
@pytest.mark.parametrize(
    "cls,kw",
    [
        (ComplexSynapseSGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3,
                             "n_beakers": 4, "alpha": 1.0, "beta": 20.0}),
        (ComplexSynapseSGD, {"lr": 0.1, "n_beakers": 1, "alpha": 1.0, "beta": 5.0,
                             "timescale": "iterations"}),
        (ComplexSynapseAdam, {"lr": 0.01, "weight_decay": 1e-3, "n_beakers": 3, "alpha": 0.05,
                              "beta": 1.0}),
        (ComplexSynapseAdam, {"lr": 0.01, "n_beakers": 5, "alpha": 2.0, "beta": 50.0,
                              "timescale": "iterations"}),
    ],
)
def test_foreach_and_single_tensor_paths_agree(cls, kw):
    data = batches(8)
    m1, m2 = mlp(), mlp()
    o1 = cls(m1.parameters(), foreach=True, **kw)
    o2 = cls(m2.parameters(), foreach=False, **kw)
    train(m1, o1, data)
    train(m2, o2, data)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(o1.beakers(a), o2.beakers(b))


@pytest.mark.parametrize(
    "cls,kw",
    [
        (ComplexSynapseSGD, {"lr": 0.1, "momentum": 0.9, "n_beakers": 4, "alpha": 1.0, "beta": 20.0}),
        (ComplexSynapseAdam, {"lr": 0.01, "n_beakers": 3, "alpha": 0.05, "beta": 1.0}),
    ],
)
def test_state_dict_round_trip_continues_exactly(cls, kw):
    data = batches(8)
    model = mlp()
    opt = cls(model.parameters(), **kw)
    train(model, opt, data[:4])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    saved = torch.load(buf)

    model2 = copy.deepcopy(model)
    opt2 = cls(model2.parameters(), **{**kw, "n_beakers": 2})  # overwritten by the load
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["n_beakers"] == kw["n_beakers"]
    assert opt2.num_steps == opt.num_steps == 4

    train(model, opt, data[4:])  # the uninterrupted run
    train(model2, opt2, data[4:])
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
        assert torch.equal(opt.beakers(a), opt2.beakers(b))


@pytest.mark.parametrize(
    "torch_cls,cls", [(torch.optim.SGD, ComplexSynapseSGD), (torch.optim.Adam, ComplexSynapseAdam)]
)
def test_loads_a_torch_optim_state_dict(torch_cls, cls):
    data = batches(6)
    m1 = mlp()
    o1 = torch_cls(m1.parameters(), lr=0.01, **({"momentum": 0.9} if torch_cls is torch.optim.SGD else {}))
    train(m1, o1, data[:3])
    m2 = copy.deepcopy(m1)
    o2 = cls(m2.parameters(), lr=0.5, n_beakers=0)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))  # (load_state_dict may alias tensors)
    assert o2.param_groups[0]["lr"] == 0.01 and o2.param_groups[0]["n_beakers"] == 0
    train(m1, o1, data[3:])
    train(m2, o2, data[3:])
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_lazy_state_memory_and_avalanche_style_reset(cls):
    model = mlp()
    opt = cls(model.parameters(), lr=0.01, n_beakers=5, alpha=0.1, beta=1.0)
    w = model.body[0].weight
    assert opt.beakers(w).shape == (5, 8, 6)  # before any step: all equal the weight
    assert torch.equal(opt.beakers(w)[3], w.detach())
    train(model, opt, batches(2))
    trained = [p for p in model.parameters() if p.grad is not None]
    assert len(opt.state) == len(trained) == 4  # the unused layer got no state
    extra = {"exp_avg", "exp_avg_sq", "step"} if cls is ComplexSynapseAdam else set()
    for p in trained:
        st = opt.state[p]
        assert set(st) == {"beakers"} | extra
        assert st["beakers"].shape == (4, *p.shape)  # n - 1 copies, no more
        b = opt.beakers(p)
        assert b.shape == (5, *p.shape) and torch.equal(b[0], p.detach())
        assert not torch.equal(b[0], b[1])
    before = model.unused.weight.detach().clone()

    # what Avalanche does at the first train(): wipe the state, put every
    # parameter (plus new ones) in group 0
    new = nn.Parameter(torch.ones(3))
    opt.state = defaultdict(dict)
    opt.param_groups[0]["params"] = list(model.parameters()) + [new]
    loss_fn = nn.CrossEntropyLoss()
    x, y = batches(1, seed=5)[0]
    opt.zero_grad()
    (loss_fn(model(x), y) + new.sum()).backward()
    opt.step()
    assert "beakers" in opt.state[new] and len(opt.state) == 5
    assert torch.equal(model.unused.weight, before)
    with pytest.raises(ValueError, match="not a parameter"):
        opt.beakers(torch.zeros(2))


def test_beakers_for_zero_and_one_beaker():
    p = nn.Parameter(torch.randn(2, 3))
    for n in (0, 1):
        opt = ComplexSynapseSGD([p], lr=0.1, n_beakers=n, alpha=1.0, beta=2.0)
        p.grad = torch.ones_like(p)
        opt.step()
        assert opt.beakers(p).shape == (1, 2, 3)
        assert "beakers" not in opt.state[p]


# --------------------------------------------------------------------- bad input
BAD = [
    ({"n_beakers": -1}, "n_beakers", ">= 0"),
    ({"n_beakers": 2.0}, "n_beakers", "int"),
    ({"n_beakers": True}, "n_beakers", "int"),
    ({"alpha": 0.0}, "alpha", "> 0"),
    ({"alpha": -3.0}, "alpha", "> 0"),
    ({"alpha": 10.0, "beta": 5.0}, "beta", ">= alpha"),
    ({"beta": float("inf")}, "beta", ">= alpha"),
    ({"lr": -0.1}, "lr", ">= 0"),
    ({"timescale": "epochs"}, "timescale", "reference"),
    ({"weight_decay": -1.0}, "weight_decay", ">= 0"),
]


@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("kw,name,allowed", BAD)
def test_bad_hyperparameters_raise_value_error(cls, kw, name, allowed):
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError) as info:
        cls([p], **kw)
    assert name in str(info.value) and allowed in str(info.value)
    opt = cls([p])
    with pytest.raises(ValueError, match=name):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], **kw})
    assert len(opt.param_groups) == 1


def test_other_bad_options():
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="nonfinite"):
        ComplexSynapseSGD([p], nonfinite="nan")
    with pytest.raises(ValueError, match="nesterov"):
        ComplexSynapseSGD([p], nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        ComplexSynapseAdam([p], betas=(0.9, 1.0))


def test_large_rates_warn_once():
    p = nn.Parameter(torch.zeros(3))
    opt = ComplexSynapseSGD([p], lr=0.1, n_beakers=3, alpha=0.5, beta=4.0, timescale="iterations")
    with pytest.warns(RuntimeWarning, match="overshoots"):
        p.grad = torch.ones_like(p)
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()


# --------------------------------------------------------------------- non-finite
def snapshot(model, opt):
    params = [p.detach().clone() for p in model.parameters()]
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}
    return params, state


def same(a, b):
    (pa, sa), (pb, sb) = a, b
    if not all(torch.equal(x, y) for x, y in zip(pa, pb)) or sa.keys() != sb.keys():
        return False
    return all(
        sa[k].keys() == sb[k].keys() and all(torch.equal(sa[k][j], sb[k][j]) for j in sa[k])
        for k in sa
    )


def poisoned_grads(model, value, index=2):
    loss_fn = nn.CrossEntropyLoss()
    x, y = batches(1, seed=9)[0]
    model.zero_grad()
    loss_fn(model(x), y).backward()
    list(model.parameters())[index].grad[0] = value


@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_raise_modifies_nothing(cls, value):
    model = mlp()
    opt = cls(model.parameters(), lr=0.01, momentum=0.9, n_beakers=3) if cls is ComplexSynapseSGD \
        else cls(model.parameters(), lr=0.01, n_beakers=3)
    poisoned_grads(model, value)  # at the very first step: no state may appear
    with pytest.raises(FloatingPointError, match=r"parameter 2 .*shape \(3, 8\).* step 1"):
        opt.step()
    assert all(len(s) == 0 for s in opt.state.values())
    train(model, opt, batches(2))
    before = snapshot(model, opt)
    poisoned_grads(model, value)
    with pytest.raises(FloatingPointError, match="step 3"):  # the refused first call does not count
        opt.step()
    assert same(before, snapshot(model, opt))
    assert opt.num_steps == 2


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_nonfinite_skip_warns_and_leaves_everything(cls):
    model = mlp()
    opt = cls(model.parameters(), lr=0.01, n_beakers=3, nonfinite="skip")
    train(model, opt, batches(2))
    before = snapshot(model, opt)
    poisoned_grads(model, float("nan"))
    with pytest.warns(RuntimeWarning, match="skipped"):
        opt.step()
    assert same(before, snapshot(model, opt))
    assert opt.num_skipped_steps == 1 and opt.num_steps == 3
    train(model, opt, batches(1))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not same(before, snapshot(model, opt))


def test_nonfinite_ignore_propagates():
    model = mlp()
    opt = ComplexSynapseSGD(model.parameters(), lr=0.01, n_beakers=3, nonfinite="ignore")
    poisoned_grads(model, float("nan"))
    opt.step()
    w = list(model.parameters())[2]
    assert torch.isnan(w).any() and torch.isnan(opt.beakers(w)).any()


# --------------------------------------------------------------------- Avalanche
def tiny_scenario():
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    g = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.arange(n) % 4
        return torch.utils.data.TensorDataset(torch.randn(n, 8, generator=g) + y[:, None], y)

    return nc_benchmark(make(64), make(32), 2, task_labels=False, seed=0, fixed_class_order=[0, 1, 2, 3])


@pytest.mark.parametrize("strategy", ["Naive", "EWC", "Replay"])
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_inside_avalanche_strategies(strategy, cls):
    import avalanche.training as at
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = cls(model.parameters(), lr=0.05, n_beakers=4, alpha=2.0, beta=40.0, timescale="iterations")
    extra = {"EWC": {"ewc_lambda": 1.0}, "Replay": {"mem_size": 20}}.get(strategy, {})
    strat = getattr(at, strategy)(
        model=model, optimizer=opt, criterion=nn.CrossEntropyLoss(), train_mb_size=16,
        train_epochs=1, eval_mb_size=32, evaluator=EvaluationPlugin(), **extra,
    )
    for exp in tiny_scenario().train_stream:
        strat.train(exp)
    assert torch.isfinite(strat.loss)
    assert opt.num_steps > 0
    for p in model.parameters():
        assert "beakers" in strat.optimizer.state[p]
        b = opt.beakers(p)
        assert not torch.equal(b[0], b[1])


def test_tiny_rates_stay_accurate_in_float32():
    """At the published setting the per-step rates are ~1e-6; the update must
    not round them away in float32 (e.g. through a factor 1 - rate)."""
    runs = []
    for dtype in (torch.float64, torch.float32):
        p = nn.Parameter(torch.zeros(3, dtype=dtype))
        opt = ComplexSynapseAdam([p], lr=1e-3, n_beakers=5, alpha=500.0, beta=2500.0)
        p.grad = torch.zeros_like(p)
        opt.step()
        with torch.no_grad():
            p.add_(1.0)
        for _ in range(300):
            opt.step()
        runs.append(opt.beakers(p)[:3, 0].double())
    displaced = 1 - runs[0][0]
    assert 1e-4 < displaced < 1e-3  # the reference's time step: barely any relaxation
    # float32 gets the relaxation within ~1.3e-4 (relative); a factor (1 - rate)
    # rounded to float32 would be off by ~4e-4
    torch.testing.assert_close(1 - runs[1][0], displaced, rtol=2.5e-4, atol=0)
    torch.testing.assert_close(runs[1][1:], runs[0][1:], rtol=1e-3, atol=0)


# --------------------------------------------------------------------- cache-blocked CPU path
BLOCKED_CASES = [
    (ComplexSynapseSGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3,
                         "n_beakers": 4, "alpha": 1.0, "beta": 20.0}),
    (ComplexSynapseSGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.1, "n_beakers": 5,
                         "alpha": 1.0, "beta": 30.0, "timescale": "iterations"}),
    (ComplexSynapseSGD, {"lr": 0.1, "n_beakers": 1, "alpha": 1.0, "beta": 5.0}),
    (ComplexSynapseAdam, {"lr": 0.01, "weight_decay": 1e-3, "n_beakers": 3, "alpha": 0.05,
                          "beta": 1.0}),
    (ComplexSynapseAdam, {"lr": 0.01, "n_beakers": 0}),
]


@pytest.mark.parametrize("cls,kw", BLOCKED_CASES)
def test_cache_blocked_path_is_bit_identical(cls, kw, monkeypatch):
    """With fused=False the CPU path runs the passes block by block (blocks of 7 elements
    here, so every tensor has a ragged last block); it must equal the
    per-tensor and the multi-tensor paths exactly."""
    import avalanche_sparse.optim.complex_synapse as impl

    monkeypatch.setattr(impl, "_BLOCK", 7)
    data = batches(6)
    models = [mlp() for _ in range(3)]
    opts = [cls(models[0].parameters(), fused=False, **kw),
            cls(models[1].parameters(), foreach=False, **kw),
            cls(models[2].parameters(), foreach=True, **kw)]
    assert opts[0]._mode(opts[0].param_groups[0], list(models[0].parameters())) == "blocked"
    for model, opt in zip(models, opts):
        train(model, opt, data)
    for ps in zip(*(m.parameters() for m in models)):
        for q, o in zip(ps[1:], opts[1:]):
            assert torch.equal(ps[0], q)
            assert torch.equal(opts[0].beakers(ps[0]), o.beakers(q))
    sds = [o.state_dict()["state"] for o in opts]
    for k in sds[0]:
        for key in sds[0][k]:
            assert all(torch.equal(sds[0][k][key], sd[k][key]) for sd in sds[1:])


def test_blocked_path_falls_back_on_non_contiguous(monkeypatch):
    import avalanche_sparse.optim.complex_synapse as impl

    monkeypatch.setattr(impl, "_BLOCK", 4)
    base = torch.randn(6, 5)
    p1 = nn.Parameter(base.t().contiguous().t())  # non-contiguous layout
    p2 = nn.Parameter(base.clone())
    o1 = ComplexSynapseSGD([p1], lr=0.1, n_beakers=3, alpha=1.0, beta=9.0, fused=False)
    o2 = ComplexSynapseSGD([p2], lr=0.1, n_beakers=3, alpha=1.0, beta=9.0, foreach=False)
    for k in range(3):
        g = torch.randn(6, 5, generator=torch.Generator().manual_seed(k))
        p1.grad, p2.grad = g.clone(), g.clone()
        o1.step()
        o2.step()
    assert torch.equal(p1, p2) and torch.equal(o1.beakers(p1), o2.beakers(p2))
