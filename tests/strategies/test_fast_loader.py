"""FastTensorLoaderPlugin: same minibatches, same order, same training as stock."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from avalanche_sparse.benchmarks import tensor_split_benchmark
from avalanche_sparse.strategies import FastTensorLoaderPlugin
from avalanche_sparse.strategies.fast_loader import batched_loader

warnings.filterwarnings("ignore", category=UserWarning)


def _bm(scenario="task", n=96):
    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(n) % 4, torch.arange(40) % 4
    x_tr = torch.randn(n, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(40, 1, 4, 4, generator=g) + y_te.view(-1, 1, 1, 1)
    return tensor_split_benchmark(x_tr, y_tr, x_te, y_te, 2, scenario=scenario)


def _recorder():
    from avalanche.core import SupervisedPlugin

    class Recorder(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.batches, self.loader_types = [], []

        def after_training_iteration(self, strategy, *args, **kwargs):
            self.batches.append([t.detach().clone() for t in strategy.mbatch])

        def after_training_exp(self, strategy, *args, **kwargs):
            self.loader_types.append(type(strategy.dataloader))

    return Recorder()


def _train(strategy_name, bm, *, fast, replay=False, train_kwargs=None):
    import avalanche.training as AT
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin

    RNGManager.set_random_seeds(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    rec = _recorder()
    fast_plugin = FastTensorLoaderPlugin()
    plugins = [ReplayPlugin(mem_size=24)] if replay else []
    plugins += [rec] + ([fast_plugin] if fast else [])
    extra = {"EWC": {"ewc_lambda": 1.0}, "SynapticIntelligence": {"si_lambda": 1.0}}
    strategy = getattr(AT, strategy_name)(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=2, eval_mb_size=32,
        plugins=plugins, **extra.get(strategy_name, {}),
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                   loss_metrics(stream=True), loggers=[]))
    results = []
    for exp in bm.train_stream:
        strategy.train(exp, **(train_kwargs or {}))
        results.append(strategy.eval(bm.test_stream))
    return rec, [p.detach().clone() for p in model.parameters()], results, fast_plugin


def _assert_identical(a, b):
    rec_a, params_a, res_a, _ = a
    rec_b, params_b, res_b, _ = b
    assert len(rec_a.batches) == len(rec_b.batches) > 0
    for ba, bb in zip(rec_a.batches, rec_b.batches):
        assert len(ba) == len(bb) == 3
        for u, v in zip(ba, bb):
            assert u.dtype == v.dtype and torch.equal(u, v)
    assert all(torch.equal(p, q) for p, q in zip(params_a, params_b))
    for ra, rb in zip(res_a, res_b):
        assert {k: v for k, v in ra.items() if "Time" not in k} == \
            {k: v for k, v in rb.items() if "Time" not in k}


@pytest.mark.parametrize("strategy_name,replay", [
    ("Naive", False), ("EWC", False), ("SynapticIntelligence", False),
    ("Cumulative", False), ("Naive", True),
])
def test_same_minibatches_and_training_as_stock(strategy_name, replay):
    bm = _bm("task")
    fast = _train(strategy_name, bm, fast=True, replay=replay)
    stock = _train(strategy_name, bm, fast=False, replay=replay)
    _assert_identical(fast, stock)
    plugin = fast[3]
    # 2 train experiences + 2 evals x 2 test experiences
    assert plugin.swaps == 6 and plugin.fallbacks == 0, plugin.last_fallback
    assert all(t.__name__.startswith("Batched") for t in fast[0].loader_types)
    if replay:
        from avalanche.benchmarks.utils.data_loader import ReplayDataLoader

        assert issubclass(fast[0].loader_types[1], ReplayDataLoader)
        assert not issubclass(stock[0].loader_types[1], tuple(fast[0].loader_types))


def test_class_incremental_with_drop_last():
    bm = _bm("class", n=100)  # 50 per experience: drop_last drops 2 samples
    fast = _train("Naive", bm, fast=True, train_kwargs={"drop_last": True})
    stock = _train("Naive", bm, fast=False, train_kwargs={"drop_last": True})
    _assert_identical(fast, stock)
    assert all(len(b[0]) == 16 for b in fast[0].batches)
    assert len(fast[0].batches) == 2 * 2 * 3


def _rows(x):
    arr = x.flatten(1).numpy()
    return arr[np.lexsort(arr.T[::-1])]


def test_each_epoch_is_a_permutation_of_the_experience():
    bm = _bm("task")
    rec, *_ = _train("Naive", bm, fast=True)
    per_epoch = 3  # 48 samples, batch 16
    for e, exp in enumerate(bm.train_stream):
        ds = exp.dataset
        want_x = torch.stack([ds[i][0] for i in range(len(ds))])
        want_y = sorted(int(ds[i][1]) for i in range(len(ds)))
        for epoch in range(2):
            chunk = rec.batches[(2 * e + epoch) * per_epoch:(2 * e + epoch + 1) * per_epoch]
            x = torch.cat([b[0] for b in chunk])
            assert np.array_equal(_rows(x), _rows(want_x))
            assert sorted(torch.cat([b[1] for b in chunk]).tolist()) == want_y
            assert torch.cat([b[2] for b in chunk]).eq(exp.task_label).all()


def _double(x):
    return x * 2


def test_transformed_dataset_falls_back_to_stock_loader():
    """A stock-style benchmark with a per-sample train transform keeps
    Avalanche's own loader, and training is unchanged."""
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    from avalanche_sparse.benchmarks.scenarios import LabelledTensorDataset

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 4
    x = torch.randn(64, 1, 4, 4, generator=g)
    bm = nc_benchmark(LabelledTensorDataset(x, y), LabelledTensorDataset(x[:32], y[:32]),
                      n_experiences=2, task_labels=True, shuffle=False,
                      train_transform=_double, eval_transform=None)
    fast = _train("Naive", bm, fast=True)
    stock = _train("Naive", bm, fast=False)
    _assert_identical(fast, stock)
    plugin = fast[3]
    assert plugin.fallbacks == 2 and "transform" in plugin.last_fallback
    assert plugin.swaps == 4  # the eval loaders have no transform
    assert not any(t.__name__.startswith("Batched") for t in fast[0].loader_types)
    first = fast[0].batches[0][0]
    assert any(torch.equal(first[0], 2 * row) for row in x)  # the transform was applied


def test_plain_torch_loader_and_other_collate_are_not_batched():
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader
    from torch.utils.data import DataLoader

    ds = _bm("task").train_stream[0].dataset
    new, why = batched_loader(DataLoader(ds, batch_size=4))
    assert new is None and "MultiDatasetDataLoader" in why
    new, why = batched_loader(TaskBalancedDataLoader(ds, batch_size=4, collate_fn=lambda b: b))
    assert new is None and "collate" in why
    loader = TaskBalancedDataLoader(ds, batch_size=4)
    new, why = batched_loader(loader)
    assert why == "" and isinstance(new, TaskBalancedDataLoader) and len(new) == len(loader)
    assert batched_loader(new) == (new, "")


@pytest.mark.parametrize("kwargs", [{"train": "yes"}, {"eval": 1}])
def test_bad_arguments(kwargs):
    with pytest.raises(TypeError, match="train and eval must be bool"):
        FastTensorLoaderPlugin(**kwargs)


def test_ffcv_enabled_data_is_not_batched():
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    from avalanche_sparse.benchmarks.batched import BatchedTensorView

    ds = _bm("task").train_stream[0].dataset
    leaf = BatchedTensorView([ds]).leaves[0]
    leaf.ffcv_info = object()
    try:
        new, why = batched_loader(TaskBalancedDataLoader(ds, batch_size=4))
    finally:
        del leaf.ffcv_info
    assert new is None and "FFCV" in why
