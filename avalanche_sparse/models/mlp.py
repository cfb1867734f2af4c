"""Dense baseline models: MLPs and a small CNN, single- and multi-head.

These are the networks of the baseline rows of Table 1 (``naive``, ``ewc``,
``si``, ``joint``) and the dense twins against which the sparse families are
compared. Every model exposes ``features`` (the trunk) and ``classifier``
(the head), the Avalanche convention; the multi-head variants are Avalanche
``MultiTaskModule``s whose ``classifier`` is a ``MultiHeadClassifier``, so
task labels reach ``forward(x, task_labels)`` in task-incremental runs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import Tensor, nn

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN", "mlp_trunk", "cnn_trunk"]


def _check_sizes(hidden_sizes: Sequence[int], name: str = "hidden_sizes") -> list[int]:
    sizes = list(hidden_sizes)
    if not sizes or any(not isinstance(h, int) or h < 1 for h in sizes):
        raise ValueError(f"{name} must be a non-empty list of ints >= 1, got {hidden_sizes!r}")
    return sizes


def _check_dropout(dropout: float) -> float:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return dropout


def mlp_trunk(input_size: int, hidden_sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """``Flatten -> [Linear -> ReLU -> Dropout] * len(hidden_sizes)``."""
    layers: list[nn.Module] = [nn.Flatten()]
    prev = input_size
    for h in _check_sizes(hidden_sizes):
        layers += [nn.Linear(prev, h), nn.ReLU()]
        if _check_dropout(dropout) > 0:
            layers.append(nn.Dropout(dropout))
        prev = h
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Dense multilayer perceptron with a single head.

    :param input_size: number of input features (the image is flattened).
    :param n_classes: number of output units.
    :param hidden_sizes: width of each hidden layer.
    :param dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self, input_size: int = 784, n_classes: int = 10, *,
        hidden_sizes: Sequence[int] = (400, 400), dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if input_size < 1 or n_classes < 1:
            raise ValueError(f"input_size and n_classes must be >= 1, got {input_size}, {n_classes}")
        self.features = mlp_trunk(input_size, hidden_sizes, dropout)
        self.classifier = nn.Linear(list(hidden_sizes)[-1], n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def cnn_trunk(
    in_channels: int, channels: Sequence[int] = (32, 64), hidden_size: int = 256,
    dropout: float = 0.0, image_size: int = 32,
) -> tuple[nn.Sequential, int]:
    """Two 5x5 conv blocks (conv -> ReLU -> 2x2 max-pool) and a dense layer.

    :return: the trunk and its output width.
    """
    chans = _check_sizes(channels, "channels")
    _check_dropout(dropout)
    for name, value, low in (("in_channels", in_channels, 1), ("hidden_size", hidden_size, 1),
                             ("image_size", image_size, 2 ** len(chans))):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    layers: list[nn.Module] = []
    prev, size = in_channels, image_size
    for c in chans:
        layers += [nn.Conv2d(prev, c, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        prev, size = c, size // 2
    layers += [nn.Flatten(), nn.Linear(prev * size * size, hidden_size), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers), hidden_size


class SmallCNN(nn.Module):
    """Small CNN for 32x32 images: two 5x5 conv blocks, one dense layer, a head."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *,
                 channels: Sequence[int] = (32, 64), hidden_size: int = 256,
                 dropout: float = 0.0, image_size: int = 32) -> None:
        super().__init__()
        self.features, out = cnn_trunk(in_channels, channels, hidden_size, dropout, image_size)
        self.classifier = nn.Linear(out, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class MultiHeadMLP(MultiTaskModule):
    """Dense MLP with one output head per task (task-incremental learning).

    An Avalanche ``MultiTaskModule``: Avalanche's model adaptation adds a head
    when a new task label appears; ``forward(x, task_labels)`` routes every
    sample to the head of its task.
    """

    def __init__(
        self, input_size: int = 784, n_classes: int = 10, *,
        hidden_sizes: Sequence[int] = (256, 256), dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = mlp_trunk(input_size, hidden_sizes, dropout)
        self.classifier = MultiHeadClassifier(list(hidden_sizes)[-1], initial_out_features=n_classes)
        self.max_class_label = max(self.max_class_label, n_classes)  # width of the mixed-task output

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.classifier(self.features(x), task_label)


class MultiHeadSmallCNN(MultiTaskModule):
    """:class:`SmallCNN` with one head per task (an Avalanche ``MultiTaskModule``)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *,
                 channels: Sequence[int] = (32, 64), hidden_size: int = 256,
                 dropout: float = 0.0, image_size: int = 32) -> None:
        super().__init__()
        self.features, out = cnn_trunk(in_channels, channels, hidden_size, dropout, image_size)
        self.classifier = MultiHeadClassifier(out, initial_out_features=n_classes)
        self.max_class_label = max(self.max_class_label, n_classes)  # width of the mixed-task output

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.classifier(self.features(x), task_label)
