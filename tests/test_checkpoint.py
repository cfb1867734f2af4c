"""Data-only strategy checkpoints: resuming gives the uninterrupted run's numbers."""
from __future__ import annotations

import collections

import pytest
import torch

import avalanche_sparse.strategies as S
from avalanche_sparse.checkpoint import (
    UnsupportedStateError, capture, load_checkpoint, load_strategy_state, restore, save_checkpoint,
    strategy_state,
)


def _bench(scenario):
    from avalanche_sparse.benchmarks import tensor_split_benchmark
    from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo

    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.arange(120) % 6, torch.arange(60) % 6
    x_tr = torch.randn(120, 1, 4, 4, generator=g) + y_tr.view(-1, 1, 1, 1)
    x_te = torch.randn(60, 1, 4, 4, generator=g) + y_te.view(-1, 1, 1, 1)
    bm = tensor_split_benchmark(x_tr, y_tr, x_te, y_te, 3, scenario=scenario)
    info = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=6, n_experiences=3,
                         scenario=scenario, label="tiny")
    return bm, info


def _strategy(name, info):
    from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    protocol = {"optimizer": "adam", "lr": 0.01, "train_epochs": 1, "train_mb_size": 16, "eval_mb_size": 64,
                "hidden_sizes": [8]}
    if name.startswith("dendrites"):
        # subsampled data keeps the protocol's loop (not the paper's 2x2000, 20 epochs);
        # 64 units so that k-WTA's 5 % keeps 3 winners
        protocol.update(subsample=0.5, hidden_sizes=[64])
    hp = S.resolve_hparams(S.get_method(name), "tiny", protocol)
    ev = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loss_metrics(stream=True),
                          forgetting_metrics(experience=True, stream=True),
                          bwt_metrics(experience=True, stream=True), loggers=[])
    return S.build_strategy(S.get_method(name), S.MethodContext(benchmark=info, hparams=hp), evaluator=ev)


def _numbers(res):
    return {k: float(v) for k, v in res.items() if isinstance(v, (int, float))}


@pytest.mark.filterwarnings("ignore:No loggers")
@pytest.mark.parametrize("name,scenario", [("naive", "task"), ("ewc", "class"), ("ewc", "task"),
                                           ("si", "class"), ("joint", "class"),
                                           # prototypes, SI without optimizer resets, analysis plugin
                                           ("dendrites_si", "class"), ("dendrites", "class")])
def test_resume_after_each_experience_is_bit_identical(name, scenario, tmp_path):
    bm, info = _bench(scenario)
    train, test = list(bm.train_stream), bm.test_stream
    ref = _strategy(name, info)
    expected = []
    for exp in train:
        ref.train(exp)
        expected.append(_numbers(ref.eval(test)))
    ref_params = {k: v.clone() for k, v in ref.model.state_dict().items()}
    for stop in (1, 2):  # killed after experience `stop`, resumed in a fresh process state
        first = _strategy(name, info)
        for exp in train[:stop]:
            first.train(exp)
            first.eval(test)
        save_checkpoint(tmp_path / "ck.pt", strategy_state(first))
        del first
        torch.manual_seed(1234)  # a fresh process would have another RNG state
        resumed = _strategy(name, info)
        load_strategy_state(resumed, load_checkpoint(tmp_path / "ck.pt"), train_exps=train[:stop],
                            eval_streams=[test])
        got = []
        for exp in train[stop:]:
            resumed.train(exp)
            got.append(_numbers(resumed.eval(test)))
        for g, e in zip(got, expected[stop:]):
            assert {k: v for k, v in g.items() if g[k] != e.get(k)} == {}, f"{name} resumed after {stop}"
        assert got == expected[stop:]
        for k, v in resumed.model.state_dict().items():
            assert torch.equal(v, ref_params[k]), k


def test_plugin_state_is_captured_in_place():
    from avalanche.training.plugins import EWCPlugin

    p = EWCPlugin(ewc_lambda=1.0)
    p.importances[0]["w"] = torch.ones(3)
    enc = {k: capture(v) for k, v in vars(p).items()}
    q = EWCPlugin(ewc_lambda=2.0)
    keep = q.importances
    for k, v in enc.items():
        setattr(q, k, restore(getattr(q, k), v))
    assert q.ewc_lambda == 1.0 and q.importances is keep
    assert isinstance(q.importances, collections.defaultdict) and torch.equal(q.importances[0]["w"], torch.ones(3))


def test_state_that_is_not_plain_data_is_refused():
    class Opaque:
        __slots__ = ("x",)

    with pytest.raises(UnsupportedStateError, match=r"plugin\.handle: cannot checkpoint"):
        capture(Opaque(), "plugin.handle")
    assert capture({"f": lambda x: x, "g": torch.zeros}) == {
        "__kind__": "dict", "keys": ["g"],
        "values": [{"__kind__": "ref", "module": "torch", "qualname": "zeros"}]}


def test_unreadable_checkpoint_reads_as_none(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert load_checkpoint(tmp_path / "bad.pt") is None
    assert load_checkpoint(tmp_path / "absent.pt") is None
