"""Dendritic segments and dendritic layers: responses, gates, masks, init, bad input."""
from __future__ import annotations

import math

import pytest
import torch

from avalanche_sparse.layers import (
    DendriteSegments,
    DendriticLayer,
    apply_dendrites,
    dendritic_absolute_max_gate,
    dendritic_bias,
    dendritic_max_gate,
    modified_kaiming_uniform_,
    rezero_weights,
    winning_segments,
)


def _loop_responses(weights, context):
    """Reference responses with explicit loops (the formula, slowly)."""
    b = context.shape[0]
    n, s, _ = weights.shape
    out = torch.empty(b, n, s)
    for i in range(b):
        for u in range(n):
            for j in range(s):
                out[i, u, j] = weights[u, j] @ context[i]
    return out


def test_segment_responses_match_the_formula():
    torch.manual_seed(0)
    seg = DendriteSegments(5, 3, 7)
    c = torch.randn(4, 7)
    d = seg(c)
    assert d.shape == (4, 5, 3)
    assert torch.allclose(d, _loop_responses(seg.weights.detach(), c), atol=1e-6)
    assert torch.allclose(d, torch.einsum("ijk,bk->bij", seg.weights, c), atol=1e-6)
    seg_b = DendriteSegments(5, 3, 7, bias=True)
    assert torch.allclose(seg_b(c), torch.einsum("ijk,bk->bij", seg_b.weights, c) + seg_b.biases, atol=1e-6)


def test_absolute_max_gate_keeps_the_sign_of_the_winner():
    y = torch.tensor([[2.0, 2.0, -1.0]])
    d = torch.tensor([[[-7.4, 6.5], [1.0, -0.5], [0.0, 3.0]]])
    out = dendritic_absolute_max_gate(y, d)
    assert out.indices.tolist() == [[0, 0, 1]]
    expected = y * torch.sigmoid(torch.tensor([[-7.4, 1.0, 3.0]]))
    assert torch.allclose(out.values, expected)
    # plain max gate picks 6.5 instead of -7.4
    assert dendritic_max_gate(y, d).indices.tolist() == [[1, 0, 1]]
    assert torch.allclose(dendritic_bias(y, d).values, y + torch.tensor([[6.5, 1.0, 3.0]]))


def test_gradient_reaches_only_the_winning_segment():
    d = torch.tensor([[[0.1, -3.0, 2.0]]], requires_grad=True)
    y = torch.ones(1, 1)
    apply_dendrites(y, d).values.sum().backward()
    g = d.grad[0, 0]
    assert g[1] != 0 and g[0] == 0 and g[2] == 0


def test_one_segment_is_the_sigmoid_of_a_linear_context_map():
    torch.manual_seed(1)
    layer = DendriticLayer(6, 4, 1, 3)
    x, c = torch.randn(5, 6), torch.randn(5, 3)
    expected = layer.linear(x) * torch.sigmoid(c @ layer.segment_weights[:, 0].T)
    for gate in ("absolute_max", "max"):
        layer.gate = gate
        assert torch.allclose(layer(x, c), expected, atol=1e-6)


def test_layer_matches_manual_computation_and_records_winners():
    torch.manual_seed(2)
    layer = DendriticLayer(10, 6, 4, 5, weight_sparsity=0.5, seed=3)
    x, c = torch.randn(3, 10), torch.randn(3, 5)
    d = torch.einsum("ijk,bk->bij", layer.segment_weights, c)
    idx = d.abs().argmax(-1)
    expected = layer.linear(x) * torch.sigmoid(d.gather(-1, idx.unsqueeze(-1)).squeeze(-1))
    assert torch.allclose(layer(x, c), expected, atol=1e-6)
    assert torch.equal(layer.last_winning_segments, idx)


@pytest.mark.parametrize("gate", ["absolute_max", "max", "bias"])
def test_shared_contexts_give_the_same_output_and_gradients(gate):
    torch.manual_seed(4)
    layer = DendriticLayer(8, 5, 3, 4, gate=gate)
    x = torch.randn(6, 8)
    rows = torch.randn(2, 4)
    index = torch.tensor([0, 1, 1, 0, 0, 1])
    out_a = layer(x, rows, index)
    win_a = layer.last_winning_segments
    ga = torch.autograd.grad(out_a.square().sum(), [layer.segment_weights, layer.weight])
    out_b = layer(x, rows[index])
    gb = torch.autograd.grad(out_b.square().sum(), [layer.segment_weights, layer.weight])
    assert torch.allclose(out_a, out_b, atol=1e-6)
    assert torch.equal(win_a, layer.last_winning_segments)
    for a, b in zip(ga, gb):
        assert torch.allclose(a, b, atol=1e-5)
    # a single context vector is shared by the whole batch
    assert torch.allclose(layer(x, rows[1]), layer(x, rows[1].expand(6, 4)), atol=1e-6)


def test_dendrite_sparsity_mask_is_fixed_exact_and_survives_steps():
    seg = DendriteSegments(6, 3, 20, sparsity=0.75, seed=0)
    assert seg.zero_mask.dtype == torch.bool and seg.zero_mask.shape == (6, 3, 20)
    assert torch.equal((~seg.zero_mask).sum(-1), torch.full((6, 3), 5))
    assert torch.all(seg.weights[seg.zero_mask] == 0)
    same = DendriteSegments(6, 3, 20, sparsity=0.75, seed=0)
    assert torch.equal(seg.zero_mask, same.zero_mask)
    assert "zero_mask" in dict(seg.named_buffers())
    opt = torch.optim.Adam(seg.parameters(), lr=0.1)
    seg(torch.randn(4, 20)).sum().backward()
    opt.step()
    assert torch.any(seg.weights[seg.zero_mask] != 0)  # Adam moved pruned weights
    assert rezero_weights(seg) == 1
    assert torch.all(seg.weights[seg.zero_mask] == 0)
    dense = DendriteSegments(2, 2, 3)
    assert dense.zero_mask is None and "zero_mask" not in dense.state_dict()


def test_state_dict_round_trip_rezeroes():
    seg = DendriteSegments(4, 2, 10, sparsity=0.5, seed=1)
    sd = {k: v.clone() for k, v in seg.state_dict().items()}
    sd["weights"].fill_(1.0)
    other = DendriteSegments(4, 2, 10, sparsity=0.5, seed=2)
    other.load_state_dict(sd)
    assert torch.equal(other.zero_mask, seg.zero_mask)
    assert torch.all(other.weights[other.zero_mask] == 0) and torch.all(other.weights[~other.zero_mask] == 1)


def test_rezero_weights_visits_linear_and_segments_once():
    layer = DendriticLayer(10, 4, 2, 6, weight_sparsity=0.5, dendrite_sparsity=0.5, seed=0)
    with torch.no_grad():
        layer.linear.module.weight.fill_(1.0)
        layer.segment_weights.fill_(1.0)
    assert rezero_weights(layer) == 2
    assert torch.equal((layer.weight != 0).sum(1), torch.full((4,), 5))
    assert torch.equal((layer.segment_weights != 0).sum(-1), torch.full((4, 2), 3))


def test_modified_init_bounds_match_the_paper():
    # PROTOTYPE_10 bounds: 1/sqrt(a * w * F)
    w = torch.empty(2000, 50)
    modified_kaiming_uniform_(w, fan_in=784, input_density=1.0, weight_density=0.5)
    bound = 1 / math.sqrt(0.5 * 784)
    assert abs(bound - 0.0505) < 1e-4
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    layer = DendriticLayer(2048, 64, 2, 784, weight_sparsity=0.5, seed=0)
    layer.init_modified(input_density=0.05, context_density=0.1)
    ff = layer.weight[layer.weight != 0].abs().max().item()
    dd = layer.segment_weights.abs().max().item()
    assert 0.95 * 0.1398 < ff <= 1 / math.sqrt(0.05 * 0.5 * 2048)
    assert 0.95 * 0.1129 < dd <= 1 / math.sqrt(0.1 * 784)
    assert torch.equal((layer.weight != 0).sum(1), torch.full((64,), 1024))  # still sparse


def test_winning_segments_rejects_unknown_gate():
    with pytest.raises(ValueError, match="gate must be one of"):
        winning_segments(torch.zeros(1, 2, 3), "softmax")
    with pytest.raises(ValueError, match="gate must be one of"):
        apply_dendrites(torch.zeros(1, 2), torch.zeros(1, 2, 3), "min")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_units=0, num_segments=2, dim_context=3), "num_units must be an int >= 1"),
        (dict(num_units=2, num_segments=0, dim_context=3), "num_segments must be an int >= 1"),
        (dict(num_units=2, num_segments=-1, dim_context=3), "num_segments must be an int >= 1"),
        (dict(num_units=2, num_segments=2.0, dim_context=3), "num_segments must be an int >= 1"),
        (dict(num_units=2, num_segments=2, dim_context=0), "dim_context must be an int >= 1"),
        (dict(num_units=2, num_segments=2, dim_context=3, sparsity=1.0), r"in \[0, 1\)"),
        (dict(num_units=2, num_segments=2, dim_context=3, sparsity=-0.1), r"in \[0, 1\)"),
        (dict(num_units=2, num_segments=2, dim_context=3, sparsity=float("nan")), r"in \[0, 1\)"),
        (dict(num_units=2, num_segments=2, dim_context=3, sparsity=0.9), "keeps round"),
    ],
)
def test_segments_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DendriteSegments(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_segments=0), "num_segments must be an int >= 1"),
        (dict(weight_sparsity=1.0), r"weight_sparsity .* must be in \[0, 1\)"),
        (dict(dendrite_sparsity=1.5), r"sparsity .* must be in \[0, 1\)"),
        (dict(gate="softmax"), "gate must be one of"),
        (dict(in_features=0), "in_features must be an int >= 1"),
    ],
)
def test_layer_bad_arguments(kwargs, match):
    args = dict(in_features=4, out_features=3, num_segments=2, dim_context=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        DendriticLayer(**args)


def test_layer_bad_shapes():
    layer = DendriticLayer(4, 3, 2, 5)
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="dim_context=5"):
        layer(x, torch.randn(2, 6))  # context dimension mismatch
    with pytest.raises(ValueError, match="dim_context=5"):
        layer(x, torch.randn(2, 5, 1))
    with pytest.raises(ValueError, match="in_features=4"):
        layer(torch.randn(2, 5), torch.randn(2, 5))
    with pytest.raises(ValueError, match="context has 3 rows but x has 2"):
        layer(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"context_index must have shape \(2,\)"):
        layer(x, torch.randn(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="int64"):
        layer(x, torch.randn(3, 5), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="dim_context=5"):
        DendriteSegments(3, 2, 5)(torch.randn(5))
    with pytest.raises(ValueError, match="num_segments"):
        apply_dendrites(torch.zeros(2, 3), torch.zeros(2, 4, 2))
