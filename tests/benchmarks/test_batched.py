"""BatchedTensorView: a minibatch gather equals Avalanche's per-sample path."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import ConcatDataset, TensorDataset, default_collate

from avalanche_sparse.benchmarks import tensor_permuted_benchmark, tensor_split_benchmark
from avalanche_sparse.benchmarks.batched import BatchedTensorView, NotTensorBacked

warnings.filterwarnings("ignore", category=UserWarning)


def _data(n_train=80, n_test=40, n_classes=4):
    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(n_train) % n_classes, torch.arange(n_test) % n_classes
    x_tr = torch.randn(n_train, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(n_test, 1, 4, 4, generator=g)
    return x_tr, y_tr, x_te, y_te


def _stock(datasets, idx):
    cat = ConcatDataset(datasets)
    return default_collate([cat[i] for i in idx])


def _assert_same(datasets, idx):
    got = BatchedTensorView(datasets).__getitems__(idx)
    want = _stock(datasets, idx)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    return got


@pytest.fixture
def task_bm():
    return tensor_split_benchmark(*_data(), 2, scenario="task", fixed_class_order=[3, 1, 0, 2])


@pytest.fixture
def perm_bm():
    return tensor_permuted_benchmark(*_data(), 3, seed=1, return_task_id=True)


def test_experience_train_and_eval_views_match_stock(task_bm, perm_bm):
    g = torch.Generator().manual_seed(1)
    for bm in (task_bm, perm_bm):
        for stream in (bm.train_stream, bm.test_stream):
            for exp in stream:
                for ds in (exp.dataset.train(), exp.dataset.eval()):
                    idx = torch.randperm(len(ds), generator=g)[:13].tolist()
                    x, y, t = _assert_same([ds], idx)
                    assert torch.all(t == exp.task_label)


def test_concat_subset_and_several_datasets_match_stock(task_bm, perm_bm):
    for bm in (task_bm, perm_bm):
        d0, d1 = bm.train_stream[0].dataset.train(), bm.train_stream[1].dataset.train()
        cat = d0.concat(d1)
        sub = cat.subset(list(range(len(cat) - 1, 0, -3)))
        for datasets in ([cat], [sub], [d1, d0], [sub, d0.eval()]):
            n = sum(len(d) for d in datasets)
            _assert_same(datasets, list(range(n))[::-1])


def test_task_labels_of_task_set_subsets(perm_bm):
    cat = perm_bm.train_stream[0].dataset.concat(perm_bm.train_stream[2].dataset)
    for t in cat.targets_task_labels.uniques:
        part = cat.task_set[t]
        out = _assert_same([part], list(range(len(part))))
        assert torch.all(out[2] == t)


def test_real_class_mapping_is_applied():
    """nc_benchmark with class_ids_from_zero_in_each_exp remaps labels through a
    frozen ``partial(lookup, mapping)`` target transform; the view applies it."""
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    from avalanche_sparse.benchmarks.scenarios import LabelledTensorDataset

    x_tr, y_tr, x_te, y_te = _data()
    bm = nc_benchmark(LabelledTensorDataset(x_tr, y_tr), LabelledTensorDataset(x_te, y_te),
                      n_experiences=2, task_labels=True, shuffle=False,
                      fixed_class_order=[3, 1, 0, 2], class_ids_from_zero_in_each_exp=True)
    ds = bm.train_stream[0].dataset.train()
    _, y, _ = _assert_same([ds], list(range(len(ds))))
    raw = y_tr[BatchedTensorView([ds])._row]  # the stored labels: classes 3 and 1
    assert set(raw.tolist()) == {1, 3} and set(y.tolist()) == {0, 1}
    assert torch.equal(y, (raw == 1).long())  # 3 -> 0, 1 -> 1
    both = bm.train_stream[0].dataset.concat(bm.train_stream[1].dataset)
    _assert_same([both], list(range(len(both))))


def test_per_sample_transform_is_refused(task_bm):
    ds = task_bm.train_stream[0].dataset.replace_current_transform_group(lambda x: x * 2)
    with pytest.raises(NotTensorBacked, match="transform"):
        BatchedTensorView([ds.train()])


def test_non_tensor_leaves_and_non_avalanche_datasets_are_refused():
    from avalanche.benchmarks.utils import AvalancheDataset

    class Listy(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.zeros(2), i

    with pytest.raises(NotTensorBacked, match="unsupported dataset node"):
        BatchedTensorView([AvalancheDataset([Listy()])])
    with pytest.raises(NotTensorBacked, match="not an AvalancheDataset"):
        BatchedTensorView([TensorDataset(torch.zeros(3, 2))])
    with pytest.raises(NotTensorBacked, match="no datasets"):
        BatchedTensorView([])


def test_getitem_is_the_stock_element(task_bm):
    ds = task_bm.train_stream[1].dataset
    view = BatchedTensorView([ds])
    assert len(view) == len(ds)
    a, b = view[5], ds[5]
    assert all(torch.equal(torch.as_tensor(u), torch.as_tensor(v)) for u, v in zip(a, b))
