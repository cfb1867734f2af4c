"""Dense baseline models."""
from __future__ import annotations

import pytest
import torch

from avalanche_sparse.models import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN


def test_mlp_shapes():
    m = MLP(784, 10, hidden_sizes=(32, 16), dropout=0.1)
    assert m(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert isinstance(m.classifier, torch.nn.Linear) and m.classifier.in_features == 16


def test_multi_head_routes_by_task():
    m = MultiHeadMLP(16, 4, hidden_sizes=(8,))
    x = torch.randn(6, 1, 4, 4)
    out = m(x, torch.tensor([0, 0, 0, 0, 0, 0]))
    assert out.shape == (6, 4)
    assert torch.allclose(out, m(x, 0))


def test_cnn_shapes():
    assert SmallCNN(3, 10, channels=(4, 8), hidden_size=16)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert MultiHeadSmallCNN(3, 10, channels=(4, 8), hidden_size=16)(torch.zeros(2, 3, 32, 32), 0).shape == (2, 10)


@pytest.mark.parametrize("kwargs,match", [
    ({"hidden_sizes": ()}, "hidden_sizes must be a non-empty list"),
    ({"hidden_sizes": (0,)}, "hidden_sizes must be a non-empty list"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(16, 4, **kwargs)
