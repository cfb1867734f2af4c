"""Semantics of the k-WTA layers on small hand-checkable tensors."""
from __future__ import annotations

import importlib
import importlib.util
import math

import pytest
import torch
from torch import nn

from avalanche_sparse.layers import (
    KWinners,
    KWinners2d,
    kwinners,
    kwinners2d,
    max_entropy,
    update_boost_strength,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# --------------------------------------------------------------------- functional
def test_exactly_k_with_break_ties():
    torch.manual_seed(0)
    x = torch.randint(0, 3, (64, 20)).float()  # many ties
    y = kwinners(x + 1.0, None, 5, 0.0, break_ties=True)
    assert torch.equal((y != 0).sum(1), torch.full((64,), 5))


def test_ties_without_break_ties_keep_all_at_threshold():
    x = t([1.0, 2.0, 2.0, 0.5])
    assert torch.equal(kwinners(x, None, 1, 0.0), t([0.0, 2.0, 2.0, 0.0]))
    assert torch.equal(kwinners(x, None, 2, 0.0), t([0.0, 2.0, 2.0, 0.0]))
    assert torch.equal(kwinners(x, None, 3, 0.0), t([1.0, 2.0, 2.0, 0.0]))
    # large k takes the kthvalue path: same rule
    assert torch.equal(kwinners(x, None, 4, 0.0), x)
    y = kwinners(x, None, 1, 0.0, break_ties=True)
    assert (y != 0).sum() == 1 and y.max() == 2.0


def test_boosting_changes_ranking_but_passes_raw_values():
    x = t([3.0, 2.0, 1.0])
    duty = torch.tensor([1.0, 0.0, 0.0])
    assert torch.equal(kwinners(x, duty, 1, 0.0), t([3.0, 0.0, 0.0]))
    # boosted scores: 3*e^-1 = 1.10 < 2 -> unit 1 wins, its raw value 2 passes
    assert torch.equal(kwinners(x, duty, 1, 1.0), t([0.0, 2.0, 0.0]))
    assert torch.equal(kwinners(x, duty, 1, 1.0, break_ties=True), t([0.0, 2.0, 0.0]))
    # weak boosting (3*e^-0.1 = 2.71 > 2) does not change the winner
    assert torch.equal(kwinners(x, duty, 1, 0.1), t([3.0, 0.0, 0.0]))


def test_gradient_only_through_winners():
    x = t([0.5, -1.0, 4.0, 2.0], [3.0, 1.0, -2.0, 0.0]).requires_grad_()
    y = kwinners(x, None, 2, 0.0)
    (y * torch.arange(1.0, 5.0)).sum().backward()
    winners = t([0, 0, 1, 1], [1, 1, 0, 0])
    assert torch.equal(x.grad, winners * torch.arange(1.0, 5.0))
    assert torch.equal(y.detach(), x.detach() * winners)


def test_relu():
    x = t([-1.0, -2.0, -3.0, 5.0])
    assert torch.equal(kwinners(x, None, 2, 0.0), t([-1.0, 0.0, 0.0, 5.0]))
    assert torch.equal(kwinners(x, None, 2, 0.0, relu=True), t([0.0, 0.0, 0.0, 5.0]))
    assert torch.equal(kwinners(x, None, 2, 0.0, break_ties=True, relu=True), t([0.0, 0.0, 0.0, 5.0]))


def test_inplace_and_k_zero():
    x = t([1.0, 3.0, 2.0])
    y = kwinners(x, None, 1, 0.0, inplace=True)
    assert y is x and torch.equal(x, t([0.0, 3.0, 0.0]))
    assert torch.equal(kwinners(t([1.0, 2.0]), None, 0, 0.0), t([0.0, 0.0]))
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 2\]"):
        kwinners(t([1.0, 2.0]), None, 3, 0.0)
    with pytest.raises(ValueError, match="boost_strength must be >= 0"):
        kwinners(t([1.0, 2.0]), None, 1, -1.0)


def test_kwinners2d_local_and_global():
    # (1, C=3, H=1, W=2): location 0 has channels [1, 5, 3], location 1 [4, 2, 6]
    x = torch.tensor([1.0, 4.0, 5.0, 2.0, 3.0, 6.0]).view(1, 3, 1, 2)
    local = kwinners2d(x, None, 1, 0.0, local=True)
    assert torch.equal(local, torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 6.0]).view(1, 3, 1, 2))
    glob = kwinners2d(x, None, 2, 0.0, local=False)
    assert torch.equal(glob, torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 6.0]).view(1, 3, 1, 2))
    glob3 = kwinners2d(x, None, 3, 0.0, local=False, break_ties=True)
    assert torch.equal(glob3, torch.tensor([0.0, 4.0, 5.0, 0.0, 0.0, 6.0]).view(1, 3, 1, 2))
    # local k counts channels, per location
    torch.manual_seed(1)
    z = torch.randn(4, 8, 5, 5)
    y = kwinners2d(z, None, 3, 0.0, local=True, break_ties=True)
    assert torch.equal((y != 0).sum(1), torch.full((4, 5, 5), 3))
    y = kwinners2d(z, None, 7, 0.0, local=False, break_ties=True)
    assert torch.equal((y != 0).flatten(1).sum(1), torch.full((4,), 7))


def test_kwinners2d_boost_per_channel():
    x = torch.tensor([3.0, 2.0]).view(1, 2, 1, 1)
    duty = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    assert torch.equal(kwinners2d(x, duty, 1, 1.0), torch.tensor([0.0, 2.0]).view(1, 2, 1, 1))


# --------------------------------------------------------------------- modules
def test_k_and_k_inference_rules():
    m = KWinners(100, 0.05, k_inference_factor=1.5)
    assert (m.k, m.k_inference) == (5, 7)  # int(5 * 1.5) truncates
    m = KWinners(10, 0.25)
    assert m.k == 2  # round(2.5) -> 2 (Python rounding, as the reference)
    m = KWinners(10, 0.9, k_inference_factor=1.5)
    assert (m.k, m.k_inference) == (9, 10)  # capped at n
    g = KWinners2d(4, percent_on=0.05, k_inference_factor=1.5, local=False)
    g(torch.randn(2, 4, 5, 5))
    assert (g.n, g.k, g.k_inference) == (100, 5, 8)  # 2-D rounds 7.5 -> 8
    loc = KWinners2d(10, percent_on=0.25, k_inference_factor=1.5, local=True)
    assert (loc.k, loc.k_inference) == (2, 4)  # round(2.5), round(3.75)


def test_duty_cycle_by_hand_with_period_rule():
    m = KWinners(4, 0.5, boost_strength=0.0, duty_cycle_period=3)
    m.train()
    m(t([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, -1.0, -2.0]))
    # 2 samples seen, period = min(3, 2) = 2: (0 * 0 + [1,1,1,1]) / 2
    assert torch.allclose(m.duty_cycle, torch.full((4,), 0.5))
    assert m.learning_iterations.item() == 2
    y = m(t([5.0, 1.0, 0.5, -1.0], [-1.0, -2.0, -3.0, -4.0]))
    # negative winners of row 2 do not count; period = min(3, 4) = 3
    assert torch.equal(y[1:], t([-1.0, -2.0, 0.0, 0.0]))
    expected = (0.5 * (3 - 2) + t([1.0, 1.0, 0.0, 0.0])) / 3
    assert torch.allclose(m.duty_cycle, expected)
    assert m.learning_iterations.item() == 4


def test_eval_uses_k_inference_and_freezes_duty_cycle():
    m = KWinners(10, 0.2, k_inference_factor=1.5, boost_strength=0.0)
    x = torch.arange(1.0, 11.0).repeat(3, 1)
    assert (m(x) != 0).sum(1).tolist() == [2, 2, 2]
    duty, it = m.duty_cycle.clone(), m.learning_iterations.clone()
    m.eval()
    assert (m(x) != 0).sum(1).tolist() == [3, 3, 3]
    assert torch.equal(m.duty_cycle, duty) and torch.equal(m.learning_iterations, it)


def test_module_boosting_in_eval_and_gradient():
    m = KWinners(3, 0.34, k_inference_factor=1.0, boost_strength=1.0)
    assert m.k == 1
    m.duty_cycle.copy_(torch.tensor([1.0, 0.0, 0.0]))
    m.eval()
    x = t([3.0, 2.0, 1.0]).requires_grad_()
    y = m(x)
    assert torch.equal(y.detach(), t([0.0, 2.0, 0.0]))
    y.sum().backward()
    assert torch.equal(x.grad, t([0.0, 1.0, 0.0]))


def test_relu_module_and_extra_leading_dims():
    m = KWinners(4, 0.5, boost_strength=0.0, relu=True)
    x = t([-1.0, -2.0, -3.0, 5.0]).view(1, 1, 4).repeat(2, 3, 1)
    y = m(x)
    assert y.shape == x.shape and (y != 0).sum() == 6
    assert m.learning_iterations.item() == 6
    assert torch.allclose(m.duty_cycle, t([0.0, 0.0, 0.0, 1.0]))


def test_kwinners2d_duty_cycle_by_hand():
    m = KWinners2d(2, percent_on=0.5, local=True, boost_strength=0.0, duty_cycle_period=1000)
    assert m.duty_cycle.shape == (1, 2, 1, 1)
    # location 0: channels [1, 2] -> ch1; location 1: [3, -1] -> ch0
    m(torch.tensor([1.0, 3.0, 2.0, -1.0]).view(1, 2, 1, 2))
    assert torch.allclose(m.duty_cycle.flatten(), t([0.5, 0.5]))  # counts / (H*W)
    m(torch.tensor([1.0, 1.0, 2.0, 2.0]).view(1, 2, 1, 2))
    # period = 2: (0.5 * (2 - 1) + [0, 2] / 2) / 2
    assert torch.allclose(m.duty_cycle.flatten(), t([0.25, 0.75]))


def test_kwinners2d_global_module():
    m = KWinners2d(3, percent_on=0.25, k_inference_factor=1.0, boost_strength=0.0, break_ties=True)
    y = m(torch.randn(5, 3, 2, 2))
    assert m.k == 3 and torch.equal((y != 0).flatten(1).sum(1), torch.full((5,), 3))
    # spatial size change re-derives k
    m(torch.randn(5, 3, 4, 4))
    assert (m.n, m.k) == (48, 12)


def test_update_boost_strength_and_state_dict():
    m = KWinners(10, 0.2, boost_strength=2.0, boost_strength_factor=0.5)
    m.update_boost_strength()
    assert m.boost_strength.item() == 1.0 and m.boost_strength_value == 1.0
    net = nn.Sequential(m, nn.Identity(), KWinners2d(2, percent_on=0.5, boost_strength=1.0, boost_strength_factor=0.9))
    assert update_boost_strength(net) == 2
    assert m.boost_strength_value == 0.5
    assert math.isclose(net[2].boost_strength_value, 0.9, rel_tol=1e-6)
    m.train()
    m(torch.randn(7, 10))
    sd = m.state_dict()
    assert set(sd) == {"duty_cycle", "boost_strength", "learning_iterations"}
    fresh = KWinners(10, 0.2, boost_strength=2.0, boost_strength_factor=0.5)
    fresh.load_state_dict(sd)
    assert fresh.boost_strength_value == 0.5 and fresh._iterations == 7
    assert torch.equal(fresh.duty_cycle, m.duty_cycle)


def test_loads_state_dict_without_learning_iterations():
    m = KWinners(10, 0.2)
    m.load_state_dict({"duty_cycle": torch.full((10,), 0.3), "boost_strength": torch.tensor(0.5)})
    assert m.boost_strength_value == 0.5 and torch.allclose(m.duty_cycle, torch.full((10,), 0.3))
    assert m.learning_iterations.item() == 0


def test_update_boost_strength_reentrant_container():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.kw = KWinners(10, 0.2, boost_strength=1.0, boost_strength_factor=0.5)

        def update_boost_strength(self):
            update_boost_strength(self)

    net = Net()
    net.update_boost_strength()
    assert net.kw.boost_strength_value == 0.5
    update_boost_strength(net)
    assert net.kw.boost_strength_value == 0.25  # once per call, no recursion


def test_entropy():
    m = KWinners(4, 0.5)
    m.duty_cycle.fill_(0.5)
    assert math.isclose(m.entropy().item(), 4.0, rel_tol=1e-6)
    assert math.isclose(m.max_entropy(), 4.0)
    m.duty_cycle.copy_(torch.tensor([0.0, 1.0, 0.5, 0.5]))
    assert math.isclose(m.entropy().item(), 2.0, rel_tol=1e-6)
    assert max_entropy(10, 0) == 0.0
    m2 = KWinners2d(2, percent_on=0.5)
    with pytest.raises(RuntimeError):
        m2.max_entropy()
    m2.eval()
    m2(torch.randn(1, 2, 3, 3))
    m2.duty_cycle.fill_(0.5)
    assert math.isclose(m2.entropy().item(), 2.0 * 9, rel_tol=1e-6)  # scaled by n / C
    assert math.isclose(m2.max_entropy(), 18.0, rel_tol=1e-6)


# --------------------------------------------------------------------- fast CPU path
_impl = importlib.import_module("avalanche_sparse.layers.kwinners")
_kwta_cpu = importlib.import_module("avalanche_sparse.layers._kwta_cpu")


def _data(kind: str, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(["gauss", "ties", "relu", "heavy", "nan"].index(kind))
    x = torch.randn(shape, generator=g)
    if kind == "ties":
        x = torch.randint(-3, 4, shape, generator=g).float()
    elif kind == "relu":
        x = torch.relu(x - 1.0)
    elif kind == "heavy":
        x = x.pow(3) * 1e3
    elif kind == "nan":
        x.view(-1)[::97] = float("nan")
    return x


def _both_paths(fn, x, monkeypatch):
    out = []
    for fast in (True, False):
        monkeypatch.setattr(_impl, "_use_fast_cpu", fast)
        xi = x.clone().requires_grad_()
        y = fn(xi)
        torch.nan_to_num(y).sum().backward()
        out.append((torch.nan_to_num(y.detach()), xi.grad))
    return out


@pytest.mark.parametrize("native", [True, False], ids=["native", "torch"])
@pytest.mark.parametrize("kind", ["gauss", "ties", "relu", "heavy", "nan"])
@pytest.mark.parametrize("break_ties, relu", [(False, False), (False, True), (True, False), (True, True)])
def test_fast_cpu_path_selects_the_same_winners(kind, break_ties, relu, native, monkeypatch):
    if native and _kwta_cpu.load() is None:
        pytest.skip(f"k-WTA kernel not buildable here: {_kwta_cpu.load_error()}")
    monkeypatch.setattr(_impl, "_use_native", native)
    x = _data(kind, (48, 1000))
    duty = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 0.3
    for k in (2, 15, 100, 600, 999):
        (ya, ga), (yb, gb) = _both_paths(lambda t: kwinners(t, duty, k, 1.0, break_ties, relu), x, monkeypatch)
        if break_ties and kind in ("ties", "relu"):  # which tied unit wins is unspecified
            # ("relu" rows hold many tied zeros): values and winner counts agree
            assert torch.equal(ya.sort(1).values, yb.sort(1).values)
            assert torch.equal((ga != 0).sum(1), (gb != 0).sum(1))
        else:
            assert torch.equal(ya, yb) and torch.equal(ga, gb), (kind, k)


@pytest.mark.parametrize("local", [True, False])
@pytest.mark.parametrize("kind", ["gauss", "ties"])
def test_fast_cpu_path_2d(local, kind, monkeypatch):
    x = _data(kind, (8, 16, 12, 12))
    duty = torch.rand(1, 16, 1, 1, generator=torch.Generator().manual_seed(1)) * 0.3
    k = 3 if local else 200
    (ya, ga), (yb, gb) = _both_paths(lambda t: kwinners2d(t, duty, k, 1.0, local=local), x, monkeypatch)
    assert torch.equal(ya, yb) and torch.equal(ga, gb)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(percent_on=0.0), r"percent_on must be in \(0, 1\]"),
        (dict(percent_on=1.5), r"percent_on must be in \(0, 1\]"),
        (dict(k_inference_factor=0.0), "k_inference_factor must be > 0"),
        (dict(boost_strength=-0.1), "boost_strength must be >= 0"),
        (dict(boost_strength_factor=0.0), r"boost_strength_factor must be in \(0, 1\]"),
        (dict(boost_strength_factor=1.1), r"boost_strength_factor must be in \(0, 1\]"),
        (dict(duty_cycle_period=0), "duty_cycle_period must be an int >= 1"),
        (dict(percent_on=0.01), "0 winners"),
        (dict(k_inference_factor=0.1), "k_inference_factor=0.1 gives"),
    ],
)
def test_kwinners_bad_args(kwargs, match):
    args = dict(n=20, percent_on=0.2) | kwargs
    with pytest.raises(ValueError, match=match):
        KWinners(**args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(channels=0), "channels must be an int >= 1"),
        (dict(percent_on=-0.1), r"percent_on must be in \(0, 1\]"),
        (dict(duty_cycle_period=0.5), "duty_cycle_period must be an int >= 1"),
    ],
)
def test_kwinners2d_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KWinners2d(**(dict(channels=8) | kwargs))


def test_bad_n_and_shapes():
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        KWinners(0, 0.5)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 5\); got \(2, 4\)"):
        KWinners(5, 0.4)(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\); got \(2, 3, 4\)"):
        KWinners2d(3)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(batch, 3, H, W\); got \(2, 4, 5, 5\)"):
        KWinners2d(3)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="4-D input"):
        kwinners2d(torch.randn(3, 4), None, 1, 0.0)


# --------------------------------------------------------------------- reference
@pytest.mark.skipif(importlib.util.find_spec("nupic") is None, reason="nupic.torch not installed")
def test_matches_nupic_torch():  # pragma: no cover - needs the AGPL reference installed
    from nupic.torch.modules import KWinners as RefKW
    from nupic.torch.modules import KWinners2d as RefKW2d

    torch.manual_seed(0)
    for ours, ref, shape in [
        (KWinners(50, 0.1, duty_cycle_period=40), RefKW(50, 0.1, duty_cycle_period=40), (16, 50)),
        (KWinners2d(6, 0.2, duty_cycle_period=40, local=True),
         RefKW2d(6, 0.2, duty_cycle_period=40, local=True), (8, 6, 4, 4)),
        (KWinners2d(6, 0.2, duty_cycle_period=40), RefKW2d(6, 0.2, duty_cycle_period=40), (8, 6, 4, 4)),
    ]:
        for mode in ("train",) * 5 + ("eval",) * 2:
            ours.train(mode == "train")
            ref.train(mode == "train")
            x = torch.randn(shape)
            assert torch.allclose(ours(x.clone()), ref(x.clone()))
            assert torch.allclose(ours.duty_cycle, ref.duty_cycle)
        assert (ours.k, ours.k_inference) == (ref.k, ref.k_inference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("break_ties", [False, True])
def test_native_kernel_matches_reference_and_is_used(dtype, break_ties, monkeypatch):
    """The compiled row kernel gives the reference winners in both dtypes,
    including near-ties (values one float apart) and rows whose k-th value
    repeats, and it really is the path taken on CPU."""
    if _kwta_cpu.load() is None:
        pytest.skip(f"k-WTA kernel not buildable here: {_kwta_cpu.load_error()}")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 333, generator=g).to(dtype)
    x[0, :10] = 1.0  # k-th and (k+1)-th values tied
    x[1, 5] = torch.nextafter(x[1, 4], torch.tensor(float("inf"), dtype=dtype))  # one float apart
    calls = []
    real = _kwta_cpu.keep_mask
    monkeypatch.setattr(_kwta_cpu, "keep_mask", lambda *a: calls.append(1) or real(*a))
    for k in (1, 5, 40, 200, 332):
        ya = kwinners(x, None, k, 0.0, break_ties)
        monkeypatch.setattr(_impl, "_use_fast_cpu", False)
        yb = kwinners(x, None, k, 0.0, break_ties)
        monkeypatch.setattr(_impl, "_use_fast_cpu", True)
        if break_ties:
            assert torch.equal(ya.sort(1).values, yb.sort(1).values)
            assert torch.equal((ya != 0).sum(1), torch.full((64,), k))
        else:
            assert torch.equal(ya, yb), k
    assert len(calls) == 5


def test_native_kernel_nan_falls_back_to_reference(monkeypatch):
    if _kwta_cpu.load() is None:
        pytest.skip(f"k-WTA kernel not buildable here: {_kwta_cpu.load_error()}")
    x = torch.randn(4, 50)
    x[2, 7] = float("inf")
    assert _kwta_cpu.keep_mask(x, 5, False, False) is None
    assert _kwta_cpu.keep_mask(x[:2], 5, False, False) is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("break_ties, relu", [(False, False), (True, False), (False, True)])
def test_kwinners_module_fused_kernel_matches_reference(dtype, break_ties, relu, monkeypatch):
    """KWinners' fused CPU path (boost, winners and duty-cycle count in the
    kernel) gives the reference outputs, gradients and duty cycles over
    several training steps with boosting, and at evaluation."""
    if _kwta_cpu.load() is None:
        pytest.skip(f"k-WTA kernel not buildable here: {_kwta_cpu.load_error()}")
    mods = [KWinners(300, 0.1, boost_strength=1.5, duty_cycle_period=200, break_ties=break_ties, relu=relu)
            .to(dtype) for _ in range(2)]
    g = torch.Generator().manual_seed(7)
    xs = [torch.randn(32, 300, generator=g, dtype=dtype) for _ in range(6)]
    calls = []
    real = _kwta_cpu.winners
    monkeypatch.setattr(_kwta_cpu, "winners", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    for step, x0 in enumerate(xs):
        train = step < 4
        res = []
        for fast, m in zip((True, False), mods):
            monkeypatch.setattr(_impl, "_use_fast_cpu", fast)
            m.train(train)
            x = x0.clone().requires_grad_()
            y = m(x)
            (y * torch.arange(300, dtype=dtype)).sum().backward()
            res.append((y.detach(), x.grad, m.duty_cycle.clone()))
        (ya, ga, da), (yb, gb, db) = res
        if break_ties:
            assert torch.equal(ya.sort(1).values, yb.sort(1).values), step
        else:
            assert torch.equal(ya, yb) and torch.equal(ga, gb), step
        assert torch.equal(da, db), step  # counts are whole numbers: exact
    assert len(calls) == len(xs)
