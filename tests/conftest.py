"""Shared fixtures: a tiny synthetic data root and a tiny tensor benchmark.

Everything is made by the tests; nothing is downloaded.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # make `reproduce` and `tests` importable
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")

from tests.synthetic import write_fake_cifar10_batches, write_fake_mnist  # noqa: E402


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data root with a tiny fake MNIST (200 train / 100 test) and a tiny
    fake CIFAR-10 (original pickle format), in the layout the code reads."""
    root = tmp_path_factory.mktemp("data")
    write_fake_mnist(root / "mnist" / "MNIST" / "raw", n_train=200, n_test=100, seed=0)
    write_fake_cifar10_batches(root / "cifar10", n_per_batch=20, n_test=50, seed=0)
    return root


@pytest.fixture(scope="session")
def mnist_only_root(tmp_path_factory) -> Path:
    """A data root with the fake MNIST but no CIFAR-10 at all."""
    root = tmp_path_factory.mktemp("mnist_only")
    write_fake_mnist(root / "mnist" / "MNIST" / "raw", n_train=200, n_test=100, seed=1)
    return root


@pytest.fixture
def tiny_benchmark():
    """A 2-experience class-incremental benchmark over random tensors (4 classes)."""
    from avalanche_sparse.benchmarks import tensor_split_benchmark

    g = torch.Generator().manual_seed(0)
    y_tr = torch.arange(80) % 4
    y_te = torch.arange(40) % 4
    x_tr = torch.randn(80, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(40, 1, 4, 4, generator=g) + y_te.view(-1, 1, 1, 1)
    return tensor_split_benchmark(x_tr, y_tr, x_te, y_te, 2, scenario="class")
