"""The fused one-pass CPU kernel of ComplexSynapseSGD / ComplexSynapseAdam:
agreement with the unfused path, fallbacks and build failure."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import avalanche_sparse.optim._fused_cpu as fused_cpu
import avalanche_sparse.optim.complex_synapse as impl
from avalanche_sparse.optim import ComplexSynapseAdam, ComplexSynapseSGD


@pytest.fixture(scope="module")
def kernels():
    lib = fused_cpu.load()
    if lib is None:
        pytest.skip(f"fused kernel not buildable here: {fused_cpu.load_error()}")
    return lib


def _params(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(37, 29), (29,), (1,), (5, 3, 4)]
    return [nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]


def _run(cls, kw, dtype, steps=12, forbid_unfused=False, monkeypatch=None):
    params = _params(dtype)
    opt = cls(params, **kw)
    g = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=g, dtype=dtype) for p in params] for _ in range(steps)]
    if forbid_unfused:  # every parameter must go through the kernel
        def boom(*a, **k):
            raise AssertionError("fell back to the unfused path")
        monkeypatch.setattr(impl, "_blocks", boom)
    for gs in grads:
        for p, gr in zip(params, gs):
            p.grad = gr.clone()
        opt.step()
    monkeypatch.undo() if forbid_unfused else None
    return params, opt


def _assert_fused_matches_unfused(cls, kw, dtype, monkeypatch, keys=()):
    """The fused kernel (and only it) and the unfused path give the same
    weights, beakers and optimizer state (every key; ``keys`` must be among
    them)."""
    p1, o1 = _run(cls, {**kw, "fused": True}, dtype, forbid_unfused=True, monkeypatch=monkeypatch)
    p2, o2 = _run(cls, {**kw, "fused": False}, dtype)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(o1.beakers(a), o2.beakers(b))
        s1, s2 = o1.state[a], o2.state[b]
        assert s1.keys() == s2.keys() and set(keys) <= s1.keys()
        for key in s1:
            torch.testing.assert_close(s1[key], s2[key])


SGD_KW = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01},
    {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05},
    {"weight_decay": 0.1, "timescale": "iterations", "alpha": 3.0, "beta": 90.0},
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("kw", SGD_KW)
def test_fused_sgd_matches_unfused(kernels, kw, n, dtype, monkeypatch):
    _assert_fused_matches_unfused(ComplexSynapseSGD, {"lr": 0.05, "alpha": 0.2, "beta": 6.0, "n_beakers": n, **kw},
                                  dtype, monkeypatch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("kw", [{}, {"weight_decay": 0.01}])
def test_fused_adam_matches_unfused(kernels, kw, n, dtype, monkeypatch):
    _assert_fused_matches_unfused(ComplexSynapseAdam, {"lr": 0.01, "alpha": 0.02, "beta": 0.5, "n_beakers": n, **kw},
                                  dtype, monkeypatch, keys=("exp_avg", "exp_avg_sq", "step"))


def test_fused_is_the_cpu_default(kernels):
    p = nn.Parameter(torch.randn(3))
    for cls in (ComplexSynapseSGD, ComplexSynapseAdam):
        opt = cls([p])
        assert opt._mode(opt.param_groups[0], [p]) == "fused"
        opt = cls([p], foreach=True)
        assert opt._mode(opt.param_groups[0], [p]) == "foreach"
        opt = cls([p], fused=False)
        assert opt._mode(opt.param_groups[0], [p]) == "blocked"


def test_non_contiguous_and_other_dtypes_fall_back(kernels):
    base = torch.randn(6, 5)
    params = [nn.Parameter(base.t().contiguous().t()), nn.Parameter(torch.randn(4).half())]
    twins = [nn.Parameter(q.detach().clone()) for q in params]
    o1 = ComplexSynapseSGD(params, lr=0.1, n_beakers=3, alpha=1.0, beta=9.0, fused=True)
    o2 = ComplexSynapseSGD(twins, lr=0.1, n_beakers=3, alpha=1.0, beta=9.0, foreach=False)
    for k in range(3):
        g = torch.Generator().manual_seed(k)
        for p, q in zip(params, twins):
            p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
            q.grad = p.grad.clone()
        o1.step()
        o2.step()
    for p, q in zip(params, twins):  # the fallback is the exact unfused path
        assert torch.equal(p, q) and torch.equal(o1.beakers(p), o2.beakers(q))


def test_build_failure_warns_once_and_falls_back(monkeypatch):
    fused_cpu._reset_for_tests()
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(fused_cpu, "SOURCE", fused_cpu.SOURCE + "\n// force a fresh build\n")
    try:
        p1, p2 = nn.Parameter(torch.randn(8)), nn.Parameter(torch.randn(8))
        p2.data.copy_(p1.data)
        o1 = ComplexSynapseSGD([p1], lr=0.1, n_beakers=3, alpha=1.0, beta=9.0)
        o2 = ComplexSynapseSGD([p2], lr=0.1, n_beakers=3, alpha=1.0, beta=9.0, fused=False)
        with pytest.warns(RuntimeWarning, match="fused CPU kernel is unavailable"):
            p1.grad = torch.ones(8)
            o1.step()
        assert fused_cpu.load_error() is not None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once only
            p1.grad = torch.ones(8)
            o1.step()
        for _ in range(2):
            p2.grad = torch.ones(8)
            o2.step()
        assert torch.equal(p1, p2) and torch.equal(o1.beakers(p1), o2.beakers(p2))
    finally:
        fused_cpu._reset_for_tests()


def test_fused_nonfinite_raise_modifies_nothing(kernels):
    p = nn.Parameter(torch.randn(10))
    opt = ComplexSynapseSGD([p], lr=0.1, momentum=0.9, n_beakers=4, alpha=1.0, beta=9.0, fused=True)
    p.grad = torch.randn(10)
    opt.step()
    before = copy.deepcopy(opt.state_dict()), p.detach().clone()
    p.grad = torch.full((10,), float("nan"))
    with pytest.raises(FloatingPointError):
        opt.step()
    after = opt.state_dict()
    assert torch.equal(p, before[1])
    for key, value in before[0]["state"][0].items():
        assert torch.equal(value, after["state"][0][key])


@pytest.mark.parametrize("bad", [1, "yes"])
def test_bad_fused_option(bad):
    with pytest.raises(ValueError, match="fused must be True, False or None"):
        ComplexSynapseSGD([nn.Parameter(torch.randn(2))], fused=bad)


def test_fused_and_foreach_both_true_raise():
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        ComplexSynapseAdam([nn.Parameter(torch.randn(2))], fused=True, foreach=True)
