"""SparseWeights / SparseWeights2d: masks, seeding, state, deprecated argument."""
from __future__ import annotations

import importlib.util
import math
import warnings

import pytest
import torch
from torch import nn

from avalanche_sparse.layers import (
    KWinners,
    SparseWeights,
    SparseWeights2d,
    normalize_sparse_weights,
    rezero_weights,
)


def test_exact_nonzeros_per_row_linear():
    layer = SparseWeights(nn.Linear(50, 20), sparsity=0.7, seed=0)
    assert layer.num_nonzero == 15  # round(0.3 * 50)
    assert layer.zero_mask.dtype == torch.bool and layer.zero_mask.shape == (20, 50)
    assert torch.equal((~layer.zero_mask).sum(1), torch.full((20,), 15))
    assert torch.equal((layer.weight != 0).sum(1), torch.full((20,), 15))
    assert torch.all(layer.weight[layer.zero_mask] == 0)


def test_exact_nonzeros_per_channel_conv():
    conv = nn.Conv2d(3, 8, 3)
    layer = SparseWeights2d(conv, 0.5, seed=1)
    assert layer.fan_in == 27 and layer.num_nonzero == 14  # round(13.5) -> 14
    assert layer.zero_mask.shape == conv.weight.shape
    assert torch.equal((conv.weight != 0).flatten(1).sum(1), torch.full((8,), 14))
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(layer(x), conv(x))
    grouped = SparseWeights2d(nn.Conv2d(4, 6, 3, groups=2), 0.5, seed=0)
    assert grouped.fan_in == 18 and grouped.num_nonzero == 9


def test_seeded_masks_reproducible_and_distinct():
    a = SparseWeights(nn.Linear(40, 30), 0.9, seed=3).zero_mask
    b = SparseWeights(nn.Linear(40, 30), 0.9, seed=3).zero_mask
    c = SparseWeights(nn.Linear(40, 30), 0.9, seed=4).zero_mask
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(7)
    d = SparseWeights(nn.Linear(40, 30), 0.9).zero_mask
    torch.manual_seed(7)
    e = SparseWeights(nn.Linear(40, 30), 0.9).zero_mask
    assert torch.equal(d, e)
    # rows are not all the same pattern
    assert len({tuple(r.tolist()) for r in a}) > 1


def test_state_dict_round_trip_keeps_mask_and_rezeroes():
    src = SparseWeights(nn.Linear(12, 6), 0.5, seed=0)
    dst = SparseWeights(nn.Linear(12, 6), 0.5, seed=1)
    assert set(src.state_dict()) == {"zero_mask", "module.weight", "module.bias"}
    assert not torch.equal(src.zero_mask, dst.zero_mask)
    sd = src.state_dict()
    sd["module.weight"] = torch.ones(6, 12)  # dense weights in the file
    dst.load_state_dict(sd)
    assert torch.equal(dst.zero_mask, src.zero_mask)
    assert torch.equal(dst.weight != 0, ~src.zero_mask)


def test_adam_step_then_rezero():
    torch.manual_seed(0)
    net = nn.Sequential(SparseWeights(nn.Linear(20, 16), 0.8, seed=0), KWinners(16, 0.25), nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss = nn.functional.cross_entropy(net(torch.randn(32, 20)), torch.randint(0, 3, (32,)))
    loss.backward()
    opt.step()
    sw = net[0]
    assert (sw.weight[sw.zero_mask] != 0).any()
    assert rezero_weights(net) == 1
    assert torch.all(sw.weight[sw.zero_mask] == 0)
    assert torch.equal((sw.weight != 0).sum(1), torch.full((16,), 4))


def test_rezero_follows_mask_edits_and_dtype():
    layer = SparseWeights(nn.Linear(10, 4), 0.5, seed=0)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    layer.rezero_weights()
    assert torch.equal(layer.weight != 0, ~layer.zero_mask)
    layer.zero_mask[:, :] = False  # in-place edit of the mask (e.g. a growth rule)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    layer.rezero_weights()
    assert torch.all(layer.weight == 1.0)
    layer.zero_mask = torch.ones(4, 10, dtype=torch.bool)  # replaced buffer
    layer.double()
    layer.rezero_weights()
    assert layer.weight.dtype == torch.float64 and torch.all(layer.weight == 0)


def test_weight_sparsity_is_density_and_deprecated():
    with pytest.warns(DeprecationWarning, match="NON-zero"):
        layer = SparseWeights(nn.Linear(50, 4), weight_sparsity=0.1, seed=0)
    assert math.isclose(layer.sparsity, 0.9) and layer.num_nonzero == 5
    assert torch.equal((~layer.zero_mask).sum(1), torch.full((4,), 5))
    with pytest.warns(DeprecationWarning):
        assert math.isclose(layer.weight_sparsity, 0.1)
    assert math.isclose(layer.density, 0.1)
    # the new positional argument is sparsity: 0.1 means 10 % zeros
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SparseWeights(nn.Linear(50, 4), 0.1, seed=0).num_nonzero == 45


def test_dense_and_extreme_masks():
    dense = SparseWeights(nn.Linear(5, 3), 0.0)
    assert not dense.zero_mask.any()
    with pytest.raises(ValueError, match="0 inputs per unit"):
        SparseWeights(nn.Linear(3, 2), 0.9)
    empty = SparseWeights(nn.Linear(3, 2), 0.9, allow_extremes=True)
    assert empty.zero_mask.all() and torch.all(empty.weight == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sparsity=1.0), r"sparsity \(fraction of zero weights\) must be in \[0, 1\)"),
        (dict(sparsity=-0.1), r"must be in \[0, 1\)"),
        (dict(sparsity=1.0, allow_extremes=True), r"must be in \[0, 1\)"),
        (dict(sparsity=float("nan")), "finite real"),
        (dict(weight_sparsity=0.0), r"weight_sparsity \(the fraction of NON-zero weights\) must be in \(0, 1\]"),
        (dict(weight_sparsity=1.5), r"must be in \(0, 1\]"),
        (dict(sparsity=0.5, weight_sparsity=0.5), "not both"),
        (dict(), "sparsity .* is required"),
    ],
)
def test_bad_sparsity(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseWeights(nn.Linear(10, 4), **kwargs)


def test_wrong_module_type():
    with pytest.raises(TypeError, match="SparseWeights wraps an nn.Linear, got Conv2d"):
        SparseWeights(nn.Conv2d(1, 2, 3), 0.5)
    with pytest.raises(TypeError, match="SparseWeights2d wraps an nn.Conv2d, got Linear"):
        SparseWeights2d(nn.Linear(3, 2), 0.5)


def test_normalize_sparse_weights():
    net = nn.Sequential(SparseWeights(nn.Linear(1000, 50), 0.9, seed=0), nn.ReLU(),
                        SparseWeights2d(nn.Conv2d(4, 8, 5), 0.75, seed=0))
    g = torch.Generator().manual_seed(0)
    assert normalize_sparse_weights(net, generator=g) is net
    lin = net[0]
    bound = 1 / math.sqrt(100)  # fan = kept inputs = 0.1 * 1000
    w = lin.weight[~lin.zero_mask]
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert lin.bias.abs().max() <= bound
    assert torch.all(lin.weight[lin.zero_mask] == 0)
    conv = net[2]
    assert conv.num_nonzero == 25
    assert conv.weight.abs().max() <= 1 / 5 and torch.all(conv.weight[conv.zero_mask] == 0)


@pytest.mark.skipif(importlib.util.find_spec("nupic") is None, reason="nupic.torch not installed")
def test_counts_match_nupic_torch():  # pragma: no cover - needs the AGPL reference installed
    from nupic.torch.modules import SparseWeights as Ref

    for fan_in, s in [(784, 0.9), (1000, 0.5), (27, 0.5)]:
        ref = Ref(nn.Linear(fan_in, 8), sparsity=s)
        ours = SparseWeights(nn.Linear(fan_in, 8), sparsity=s)
        assert torch.equal((ref.module.weight != 0).sum(1), (ours.weight != 0).sum(1))
