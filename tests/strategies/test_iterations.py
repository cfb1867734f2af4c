"""IterationBudgetPlugin and the registry's ``train_iterations`` hparam."""
from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

import avalanche_sparse.strategies as S
from avalanche_sparse.benchmarks.scenarios import BenchmarkInfo
from avalanche_sparse.strategies import IterationBudgetPlugin

INFO = BenchmarkInfo(name="tiny", input_shape=(1, 4, 4), n_classes=4, n_experiences=2,
                     scenario="class", label="tiny")
# 40 training samples per experience, batch 16: 3 mini-batches per epoch
PROTOCOL = {"optimizer": "sgd", "lr": 0.1, "train_epochs": 1, "train_mb_size": 16,
            "eval_mb_size": 64, "hidden_sizes": [8]}


class StepCounter(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.per_exp: list[int] = []

    def before_training_exp(self, strategy, *args, **kwargs):
        self.per_exp.append(0)

    def after_update(self, strategy, *args, **kwargs):
        self.per_exp[-1] += 1


def naive(plugins, epochs=1, mb=16):
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    return Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                 criterion=nn.CrossEntropyLoss(), train_mb_size=mb, train_epochs=epochs,
                 eval_mb_size=64, evaluator=EvaluationPlugin(), plugins=plugins)


# batch 16 (3 batches an epoch): 2 ends inside the first epoch, 6 with the
# second, 7 inside the third. Batch 64 (1 batch an epoch): the budget ends with
# the last epoch Avalanche runs, so its loop never consumes the stop flag; a
# stale flag would skip the whole next experience.
@pytest.mark.parametrize("budget,mb", [(2, 16), (6, 16), (7, 16), (3, 64)])
def test_exactly_budget_iterations_every_experience(tiny_benchmark, budget, mb):
    counter = StepCounter()
    budget_plugin = IterationBudgetPlugin(iterations=budget)
    strat = naive([budget_plugin, counter], epochs=1, mb=mb)
    strat.train(tiny_benchmark.train_stream)  # one call: train() itself clears the flag
    assert counter.per_exp == [budget, budget]
    assert budget_plugin.iterations_done == [budget, budget]
    assert strat._stop_training is False


def test_plain_training_unchanged_without_budget(tiny_benchmark):
    counter = StepCounter()
    strat = naive([counter], epochs=2)
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    assert counter.per_exp == [6, 6]


@pytest.mark.parametrize("bad,err", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                     (True, TypeError), ("5", TypeError)])
def test_bad_iterations(bad, err):
    with pytest.raises(err, match="iterations must be an int >= 1"):
        IterationBudgetPlugin(iterations=bad)


def test_registry_adds_the_plugin_only_when_asked(tiny_benchmark):
    method = S.get_method("naive")
    ctx = S.MethodContext(benchmark=INFO, hparams={**PROTOCOL, "train_iterations": 4})
    strat = S.build_strategy(method, ctx)
    budgets = [p for p in strat.plugins if isinstance(p, IterationBudgetPlugin)]
    assert len(budgets) == 1 and budgets[0].iterations == 4
    for exp in tiny_benchmark.train_stream:
        strat.train(exp)
    assert budgets[0].iterations_done == [4, 4]
    for hp in (PROTOCOL, {**PROTOCOL, "train_iterations": None}):
        strat = S.build_strategy(method, S.MethodContext(benchmark=INFO, hparams=dict(hp)))
        assert not any(isinstance(p, IterationBudgetPlugin) for p in strat.plugins)
