"""SDMLP and TopKMLP (Bricken et al. 2023)."""
from __future__ import annotations

import warnings

import pytest
import torch

from avalanche_sparse.models import SDMLP, StaleMomentumWarning, TopKMLP, stale_momentum_optimizer


def _model(**kw):
    torch.manual_seed(0)
    kw.setdefault("n_neurons", 50)
    kw.setdefault("k", 5)
    kw.setdefault("gaba_switch_activations", None)
    return SDMLP(16, 4, **kw)


def test_structure_no_bias_positive_unit_norm_addresses():
    m = _model()
    assert m.addresses.bias is None and m.readout.bias is None
    assert [n for n, _ in m.named_parameters()] == ["addresses.weight", "readout.weight"]
    assert (m.addresses.weight >= 0).all() and (m.readout.weight >= 0).all()
    torch.testing.assert_close(m.addresses.weight.norm(dim=1), torch.ones(50))


def test_forward_is_cosine_topk_readout():
    m = _model()
    x = torch.rand(7, 1, 4, 4)
    q = x.flatten(1)
    q = q / q.norm(dim=1, keepdim=True)
    pre = q @ m.addresses.weight.t()
    thr = pre.topk(6, dim=1).values[:, 5:6]
    h = (pre - thr).relu()
    torch.testing.assert_close(m.hidden(x), h)
    torch.testing.assert_close(m(x), h @ m.readout.weight.t())
    assert ((m.hidden(x) > 0).sum(1) == 5).all()


def test_input_scale_invariance_and_negative_inputs_rectified():
    m = _model()
    x = torch.rand(3, 16)
    torch.testing.assert_close(m(x), m(5.0 * x))
    torch.testing.assert_close(m(x - 10.0 * (x < 0.3)), m(x * (x >= 0.3)))


def test_zero_norm_input_gives_zero_logits_no_nan():
    m = _model(gaba_switch_activations=10)
    m.train()
    x = torch.zeros(4, 16, requires_grad=True)
    out = m(x)
    assert torch.equal(out, torch.zeros(4, 4))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(m.addresses.weight.grad).all()


def test_enforce_constraints_after_a_step():
    m = _model()
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    x = torch.rand(8, 16)
    torch.nn.functional.cross_entropy(m(x), torch.arange(8) % 4).backward()
    opt.step()
    assert not torch.allclose(m.addresses.weight.norm(dim=1), torch.ones(50))
    m.enforce_constraints()
    assert (m.addresses.weight >= 0).all() and (m.readout.weight >= 0).all()
    torch.testing.assert_close(m.addresses.weight.norm(dim=1), torch.ones(50))
    with torch.no_grad():
        m.addresses.weight[0].zero_()
    m.enforce_constraints()
    assert torch.isfinite(m.addresses.weight).all()


def test_signed_variant_keeps_negative_weights():
    m = _model(positive_weights=False)
    assert (m.addresses.weight < 0).any()
    torch.testing.assert_close(m.addresses.weight.norm(dim=1), torch.ones(50))


def test_gaba_counters_are_buffers_in_state_dict():
    m = _model(gaba_switch_activations=1000)
    m.train()
    m(torch.rand(5, 16))
    assert int(m.state_dict()["top_k.activation_counts"].sum()) == 5 * 50
    assert "top_k.activation_counts" not in dict(m.named_parameters())


def test_input_denormalisation():
    m = _model(input_mean=0.5, input_std=0.25)
    x01 = torch.rand(3, 16)
    ref = _model()
    torch.testing.assert_close(m(((x01 - 0.5) / 0.25)), ref(x01))
    c3 = SDMLP(3 * 4, 2, n_neurons=8, k=2, input_mean=(0.1, 0.2, 0.3), input_std=(1.0, 2.0, 3.0),
               input_channels=3)
    assert c3(torch.rand(2, 3, 2, 2)).shape == (2, 2)
    with pytest.raises(ValueError, match="input_mean must have 1 or 3 values"):
        SDMLP(12, 2, input_mean=(0.1, 0.2), input_std=(1.0, 1.0), input_channels=3)
    with pytest.raises(ValueError, match="input_std must be > 0"):
        SDMLP(12, 2, input_mean=0.0, input_std=0.0)
    with pytest.raises(ValueError, match="given together"):
        SDMLP(12, 2, input_mean=0.0)


@pytest.mark.parametrize("k", [0, -3, 51])
def test_bad_k(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, 50\]"):
        _model(k=k)
    with pytest.raises(ValueError, match=r"k must be in \[1, 50\]"):
        TopKMLP(16, 4, n_neurons=50, k=k)


def test_bad_schedule_and_types():
    with pytest.raises(ValueError, match=r"k_max must be in \[5, 50\]"):
        _model(k_max=60)
    with pytest.raises(ValueError, match="k_transition_epochs must be >= 0"):
        _model(k_max=20, k_transition_epochs=-1)
    with pytest.raises(TypeError, match="n_neurons must be an int"):
        _model(n_neurons=10.0)
    with pytest.raises(ValueError, match="got inputs with 15 features"):
        _model()(torch.rand(2, 15))


def test_k_annealing_schedule():
    m = _model(k_max=45, k_transition_epochs=4)
    assert m.current_k() == 45
    assert m.update_k(2) == 25 and ((m.hidden(torch.rand(3, 16)) > 0).sum(1) == 25).all()
    assert m.update_k(10) == 5
    fixed = _model()
    assert not fixed.anneals_k and fixed.update_k(3) == 5


def test_stale_momentum_warning_not_error():
    m = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.check_optimizer(torch.optim.SGD(m.parameters(), lr=0.1)) is False
    for opt in (torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
                torch.optim.Adam(m.parameters()), torch.optim.RMSprop(m.parameters())):
        with pytest.warns(StaleMomentumWarning, match="stale"):
            assert m.check_optimizer(opt) is True
    assert stale_momentum_optimizer(torch.optim.AdamW(m.parameters())).startswith("AdamW(betas")
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        stale_momentum_optimizer("adam")


def test_topk_mlp_is_plain_topk():
    torch.manual_seed(0)
    t = TopKMLP(16, 4, n_neurons=30, k=3, k_transition_epochs=10)
    assert t.fc.bias is not None and t.readout.bias is not None
    x = torch.randn(6, 16)
    assert t.current_k() == 30
    t.update_k(10)
    h = t.hidden(x)
    assert ((h > 0).sum(1) <= 3).all()
    pre = t.fc(x)
    top = pre.topk(3, dim=1)
    expected = torch.zeros_like(pre).scatter(1, top.indices, top.values).relu()
    torch.testing.assert_close(h, expected)
    t.eval()
    torch.testing.assert_close(t.hidden(x), expected)  # same k at inference
    fixed = TopKMLP(16, 4, n_neurons=30, k=3)
    assert fixed.current_k() == 3 and not fixed.anneals_k


def test_sdmlp_learns_a_tiny_task():
    torch.manual_seed(0)
    protos = torch.eye(4).repeat_interleave(4, dim=1)  # class c lights features 4c..4c+3
    y = torch.arange(64) % 4
    x = protos[y] + 0.3 * torch.rand(64, 16)
    m = SDMLP(16, 4, n_neurons=64, k=4, gaba_switch_activations=200)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        m.enforce_constraints()
    assert (m(x).argmax(1) == y).float().mean() > 0.9
