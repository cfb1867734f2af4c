"""Structure of our scenarios and parity with Avalanche's stock generators."""
from __future__ import annotations

import pytest
import torch

from avalanche_sparse.benchmarks import (
    permuted_mnist,
    split_cifar10,
    split_mnist,
    tensor_permuted_benchmark,
    tensor_split_benchmark,
)
from avalanche_sparse.benchmarks.scenarios import subsample_indices


def _classes(stream):
    return [sorted(e.classes_in_this_experience) for e in stream]


@pytest.mark.parametrize("scenario,tasks", [("class", [0] * 5), ("task", [0, 1, 2, 3, 4])])
def test_split_mnist_structure(data_root, scenario, tasks):
    bm = split_mnist(5, scenario=scenario, root=data_root)
    assert _classes(bm.train_stream) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert _classes(bm.test_stream) == _classes(bm.train_stream)
    assert [e.task_label for e in bm.train_stream] == tasks
    assert [e.task_label for e in bm.test_stream] == tasks
    assert sum(len(e.dataset) for e in bm.train_stream) == 200
    x, y, t = bm.train_stream[1].dataset[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y in (2, 3)


@pytest.mark.parametrize("return_task_id", [False, True])
def test_split_mnist_matches_stock_generator(data_root, return_task_id):
    from avalanche.benchmarks.classic import SplitMNIST

    stock = SplitMNIST(5, return_task_id=return_task_id, seed=0, fixed_class_order=list(range(10)),
                       dataset_root=data_root / "mnist")
    ours = split_mnist(5, scenario="task" if return_task_id else "class", root=data_root)
    for s_exp, o_exp in zip(stock.train_stream, ours.train_stream):
        assert sorted(s_exp.classes_in_this_experience) == sorted(o_exp.classes_in_this_experience)
        assert len(s_exp.dataset) == len(o_exp.dataset)
        assert s_exp.task_label == o_exp.task_label
    for s_exp, o_exp in zip(stock.test_stream, ours.test_stream):
        assert len(s_exp.dataset) == len(o_exp.dataset)
        # same samples, same order, same pixels after the same transforms
        xs = torch.stack([s_exp.dataset[i][0] for i in range(len(s_exp.dataset))])
        xo = torch.stack([o_exp.dataset[i][0] for i in range(len(o_exp.dataset))])
        assert torch.allclose(xs, xo, atol=1e-6)


def test_permuted_mnist_matches_stock_pixels(data_root):
    from avalanche.benchmarks.classic import PermutedMNIST

    stock = PermutedMNIST(3, seed=7, dataset_root=data_root / "mnist")
    ours = permuted_mnist(3, seed=7, root=data_root)
    assert len(ours.train_stream) == 3
    for s_exp, o_exp in zip(stock.test_stream, ours.test_stream):
        assert len(s_exp.dataset) == len(o_exp.dataset) == 100
        assert sorted(o_exp.classes_in_this_experience) == list(range(10))
        for i in (0, 17, 99):
            xs, ys, _ = s_exp.dataset[i]
            xo, yo, _ = o_exp.dataset[i]
            assert ys == yo
            assert torch.allclose(xs, xo, atol=1e-6)
    # every experience is permuted differently, the first one too
    raw = split_mnist(1, root=data_root).test_stream[0].dataset[0][0]
    firsts = [ours.test_stream[i].dataset[0][0] for i in range(3)]
    assert not torch.allclose(raw, firsts[0])
    assert not torch.allclose(firsts[0], firsts[1])


def test_permuted_seed_changes_permutation(data_root):
    a = permuted_mnist(1, seed=0, root=data_root).test_stream[0].dataset[0][0]
    b = permuted_mnist(1, seed=1, root=data_root).test_stream[0].dataset[0][0]
    c = permuted_mnist(1, seed=0, root=data_root).test_stream[0].dataset[0][0]
    assert torch.equal(a, c) and not torch.equal(a, b)


def test_split_cifar10_original_source(data_root):
    bm = split_cifar10(5, scenario="task", root=data_root, source="original")
    assert bm.cifar10_source == "original"
    assert _classes(bm.train_stream)[0] == [0, 1]
    x, _, t = bm.train_stream[0].dataset[0]
    assert x.shape == (3, 32, 32) and t == 0
    assert sum(len(e.dataset) for e in bm.train_stream) == 100


def test_subsample_is_stratified_and_seeded(data_root):
    full = split_mnist(5, root=data_root)
    half = split_mnist(5, root=data_root, subsample=0.5, seed=3)
    for f, h in zip(full.train_stream, half.train_stream):
        assert len(h.dataset) == pytest.approx(len(f.dataset) / 2, abs=2)
    y = torch.arange(100) % 10
    a = subsample_indices(y, 0.3, seed=1)
    assert torch.equal(a, subsample_indices(y, 0.3, seed=1))
    assert not torch.equal(a, subsample_indices(y, 0.3, seed=2))
    assert torch.bincount(y[a]).tolist() == [3] * 10


def test_any_stock_strategy_trains_on_our_benchmark(tiny_benchmark):
    from avalanche.training import Naive

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    strat = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  train_mb_size=16, train_epochs=1, eval_mb_size=64)
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    res = strat.eval(tiny_benchmark.test_stream)
    assert any(k.startswith("Top1_Acc_Stream") for k in res)


@pytest.mark.parametrize("n", [3, 4, 7])
def test_n_experiences_must_divide_classes(data_root, n):
    with pytest.raises(ValueError, match=r"n_experiences=%d does not divide the 10 classes.*\[1, 2, 5, 10\]" % n):
        split_mnist(n, root=data_root)


@pytest.mark.parametrize("kwargs,match", [
    ({"scenario": "domain"}, "scenario must be one of"),
    ({"subsample": 0.0}, r"subsample must be in \(0, 1\]"),
    ({"subsample": 1.5}, r"subsample must be in \(0, 1\]"),
    ({"n_experiences": 0}, r"n_experiences must be in \[1, 10\]"),
    ({"n_experiences": 11}, r"n_experiences must be in \[1, 10\]"),
])
def test_split_bad_arguments(data_root, kwargs, match):
    args = {"n_experiences": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        split_mnist(args.pop("n_experiences"), root=data_root, **args)


def test_bad_tensor_inputs():
    x = torch.zeros(10, 1, 2, 2)
    with pytest.raises(ValueError, match="same length"):
        tensor_split_benchmark(x, torch.arange(9) % 2, x, torch.arange(10) % 2, 2)
    with pytest.raises(ValueError, match="fixed_class_order must be a permutation"):
        tensor_split_benchmark(x, torch.arange(10) % 2, x, torch.arange(10) % 2, 2,
                               fixed_class_order=[0, 5])
    with pytest.raises(ValueError, match="n_experiences must be >= 1"):
        tensor_permuted_benchmark(x, torch.arange(10) % 2, x, torch.arange(10) % 2, 0)
    with pytest.raises(ValueError, match="source must be"):
        split_cifar10(5, source="png")


def test_missing_dataset_names_staging_command(tmp_path):
    from avalanche_sparse.benchmarks.data import DatasetNotStagedError

    with pytest.raises(DatasetNotStagedError, match="avalanche_sparse.benchmarks.data fetch mnist"):
        split_mnist(5, root=tmp_path)
