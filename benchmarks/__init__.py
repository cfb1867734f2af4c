"""Offline dataset staging and fast, tensor-backed Avalanche benchmarks.

Installed as :mod:`avalanche_sparse.benchmarks` (``setup.py`` maps the
top-level ``benchmarks/`` folder here).
"""
from .scenarios import (
    BENCHMARK_BUILDERS,
    permuted_mnist,
    split_cifar10,
    split_fmnist,
    split_mnist,
    tensor_permuted_benchmark,
    tensor_split_benchmark,
)

__all__ = [
    "BENCHMARK_BUILDERS",
    "permuted_mnist",
    "split_mnist",
    "split_cifar10",
    "split_fmnist",
    "tensor_split_benchmark",
    "tensor_permuted_benchmark",
]
