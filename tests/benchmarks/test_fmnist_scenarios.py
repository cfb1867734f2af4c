"""``split_fmnist``: structure and parity with Avalanche's stock ``SplitFMNIST``.

A synthetic Fashion-MNIST root (IDX files written by the test) in the layout
both read: ``<root>/fashionmnist/FashionMNIST/raw``.
"""
from __future__ import annotations

import pytest
import torch

from avalanche_sparse.benchmarks import BENCHMARK_BUILDERS, split_fmnist, split_mnist
from avalanche_sparse.benchmarks.data import DatasetNotStagedError
from tests.synthetic import write_fake_mnist


@pytest.fixture(scope="module")
def fmnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmnist")
    write_fake_mnist(root / "fashionmnist" / "FashionMNIST" / "raw", n_train=100, n_test=50, seed=11)
    # a different MNIST beside it: split_fmnist must not read that one
    write_fake_mnist(root / "mnist" / "MNIST" / "raw", n_train=60, n_test=30, seed=12)
    return root


def _classes(stream):
    return [sorted(e.classes_in_this_experience) for e in stream]


@pytest.mark.parametrize("scenario,tasks", [("class", [0] * 5), ("task", [0, 1, 2, 3, 4])])
def test_structure(fmnist_root, scenario, tasks):
    bm = split_fmnist(5, scenario=scenario, root=fmnist_root)
    assert _classes(bm.train_stream) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert _classes(bm.test_stream) == _classes(bm.train_stream)
    assert [e.task_label for e in bm.train_stream] == tasks
    assert [e.task_label for e in bm.test_stream] == tasks
    assert sum(len(e.dataset) for e in bm.train_stream) == 100
    assert sum(len(e.dataset) for e in bm.test_stream) == 50
    x, y, _ = bm.train_stream[2].dataset[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y in (4, 5)
    assert BENCHMARK_BUILDERS["split_fmnist"] is split_fmnist
    # it reads Fashion-MNIST, not the MNIST beside it
    assert sum(len(e.dataset) for e in split_mnist(5, root=fmnist_root).train_stream) == 60


@pytest.mark.parametrize("return_task_id", [False, True])
def test_matches_stock_split_fmnist(fmnist_root, return_task_id):
    from avalanche.benchmarks.classic import SplitFMNIST

    stock = SplitFMNIST(5, return_task_id=return_task_id, seed=0,
                        fixed_class_order=list(range(10)),
                        dataset_root=fmnist_root / "fashionmnist")
    ours = split_fmnist(5, scenario="task" if return_task_id else "class", root=fmnist_root)
    for streams in (("train_stream",) * 2, ("test_stream",) * 2):
        s_stream, o_stream = getattr(stock, streams[0]), getattr(ours, streams[1])
        assert len(s_stream) == len(o_stream) == 5
        for s_exp, o_exp in zip(s_stream, o_stream):
            assert sorted(s_exp.classes_in_this_experience) == sorted(o_exp.classes_in_this_experience)
            assert s_exp.task_label == o_exp.task_label
            assert len(s_exp.dataset) == len(o_exp.dataset)
            # same samples, same order, same pixels after the same transform
            s_items = [s_exp.dataset[i] for i in range(len(s_exp.dataset))]
            o_items = [o_exp.dataset[i] for i in range(len(o_exp.dataset))]
            assert [int(it[1]) for it in s_items] == [int(it[1]) for it in o_items]
            xs = torch.stack([it[0] for it in s_items])
            xo = torch.stack([it[0] for it in o_items])
            assert torch.allclose(xs, xo, atol=1e-6)


def test_subsample_and_seed(fmnist_root):
    half = split_fmnist(5, root=fmnist_root, subsample=0.5, seed=3)
    assert sum(len(e.dataset) for e in half.train_stream) == 50
    again = split_fmnist(5, root=fmnist_root, subsample=0.5, seed=3)
    other = split_fmnist(5, root=fmnist_root, subsample=0.5, seed=4)
    def exp0(bm):
        ds = bm.train_stream[0].dataset
        return torch.stack([ds[i][0] for i in range(len(ds))])

    assert torch.equal(exp0(half), exp0(again))
    assert not torch.equal(exp0(half), exp0(other))


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"n_experiences": 3}, ValueError, r"n_experiences=3 does not divide the 10 classes"),
    ({"n_experiences": 0}, ValueError, r"n_experiences must be in \[1, 10\]"),
    ({"n_experiences": 2.5}, TypeError, "n_experiences must be an int"),
    ({"scenario": "domain"}, ValueError, "scenario must be one of"),
    ({"subsample": 0.0}, ValueError, r"subsample must be in \(0, 1\]"),
    ({"subsample": "half"}, TypeError, "subsample must be a float"),
    ({"fixed_class_order": [0, 1]}, ValueError, "fixed_class_order must be a permutation"),
])
def test_bad_arguments(fmnist_root, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        split_fmnist(**{"n_experiences": 5, **kwargs}, root=fmnist_root)


def test_not_staged_names_the_command(tmp_path):
    with pytest.raises(DatasetNotStagedError, match="avalanche_sparse.benchmarks.data fetch fmnist"):
        split_fmnist(5, root=tmp_path)
