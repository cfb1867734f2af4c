"""GABA-switch Top-K (Bricken et al. 2023)."""
from __future__ import annotations

import pytest
import torch

from avalanche_sparse.layers import GABASwitchTopK, gaba_response, linear_k_schedule


def test_plain_subtractive_topk_keeps_exactly_k_and_subtracts_threshold():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 20, generator=g)
    layer = GABASwitchTopK(20, 4, gaba_switch_activations=None)
    y = layer(x)
    assert ((y > 0).sum(1) == 4).all()
    r = x.relu()
    top5 = r.topk(5, dim=1).values
    thr = top5[:, 4:5]
    expected = (r - thr).relu()
    torch.testing.assert_close(y, expected)
    # winners are the top 4 of x
    assert torch.equal((y > 0), r >= top5[:, 3:4])


def test_fresh_neurons_are_excited_then_switch_to_inhibition():
    torch.manual_seed(0)
    x = torch.rand(10, 30)
    layer = GABASwitchTopK(30, 3, gaba_switch_activations=40)
    layer.train()
    y0 = layer(x)
    assert ((y0 > 0).sum(1) == 30).all()  # g = -1: all neurons fire
    assert torch.equal(layer.activation_counts, torch.full((30,), 10))
    torch.testing.assert_close(layer.gaba_response(), torch.full((30,), -0.5))
    for _ in range(3):
        layer(x)
    # past T/2 the interneuron inhibits: fewer neurons fire than at the start
    assert (layer.activation_counts > 20).all()
    assert ((layer(x) > 0).sum(1) < 30).all()
    layer.activation_counts.fill_(40)  # switch complete: plain Top-K
    assert (layer.gaba_response() == 1).all()
    y = layer(x)
    assert ((y > 0).sum(1) == 3).all()


def test_counts_only_in_training_and_are_a_buffer():
    layer = GABASwitchTopK(8, 2, gaba_switch_activations=100)
    layer.eval()
    layer(torch.rand(4, 8))
    assert int(layer.activation_counts.sum()) == 0
    assert "activation_counts" in layer.state_dict()
    layer.train()
    layer(torch.rand(4, 8))
    sd = layer.state_dict()
    other = GABASwitchTopK(8, 2, gaba_switch_activations=100)
    other.load_state_dict(sd)
    assert torch.equal(other.activation_counts, layer.activation_counts)


def test_gaba_response_formula():
    c = torch.tensor([0, 25, 50, 75, 100, 1000])
    torch.testing.assert_close(gaba_response(c, 100), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 1.0]))
    assert torch.equal(gaba_response(c, None), torch.ones(6))


def test_gradient_only_through_active_neurons_and_threshold_detached():
    layer = GABASwitchTopK(10, 2, gaba_switch_activations=None)
    x = torch.randn(3, 10, requires_grad=True)
    layer(x).sum().backward()
    active = (layer(x) > 0)
    assert torch.equal(x.grad != 0, active)
    assert torch.equal(x.grad[active], torch.ones(int(active.sum())))


def test_k_equal_n_and_zero_input_are_finite():
    layer = GABASwitchTopK(5, 5, gaba_switch_activations=None)
    y = layer(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    assert (y > 0).sum() == 4  # the smallest is the threshold
    z = GABASwitchTopK(5, 2)(torch.zeros(2, 5))
    assert torch.equal(z, torch.zeros(2, 5))


@pytest.mark.parametrize("k", [0, -1, 6])
def test_bad_k(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        GABASwitchTopK(5, k)
    layer = GABASwitchTopK(5, 2)
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        layer.set_k(k)


def test_bad_arguments():
    with pytest.raises(TypeError, match="k must be an int"):
        GABASwitchTopK(5, 2.5)
    with pytest.raises(ValueError, match="gaba_switch_activations must be in"):
        GABASwitchTopK(5, 2, gaba_switch_activations=0)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 5\)"):
        GABASwitchTopK(5, 2)(torch.zeros(2, 4))


def test_linear_k_schedule():
    assert linear_k_schedule(1000, 10, 200, 0) == 1000
    assert linear_k_schedule(1000, 10, 200, 100) == 505
    assert linear_k_schedule(1000, 10, 200, 200) == 10
    assert linear_k_schedule(1000, 10, 200, 500) == 10
    assert linear_k_schedule(1000, 10, 0, 0) == 10
