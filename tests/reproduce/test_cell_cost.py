"""reproduce/cell_cost.py: step counts, timing and the CLI's bad-input errors."""
from __future__ import annotations

import json

import pytest
import torch

from reproduce.cell_cost import estimate, main, steps_per_cell, time_steps
from reproduce.presets import get_preset


def test_steps_per_cell_counts_batches_epochs_and_experiences():
    full = get_preset("full")["benchmarks"]
    # 60,000 / 5 = 12,000 per experience, ceil(12,000 / 64) = 188 batches, 10 epochs, 5 experiences
    assert steps_per_cell("split_mnist_class", full["split_mnist_class"]) == 188 * 10 * 5
    # Permuted MNIST: 60,000 per task, batch 256 -> 235 batches, 10 epochs, 10 tasks
    assert steps_per_cell("permuted_mnist", full["permuted_mnist"]) == 235 * 10 * 10
    assert steps_per_cell("split_cifar10_class", full["split_cifar10_class"]) == 157 * 10 * 5
    quick = get_preset("quick")["benchmarks"]["split_mnist_task"]    # 10 % subsample
    assert steps_per_cell("split_mnist_task", quick) == 19 * 1 * 5
    # cumulative (joint): experience k trains on k shares of 12,000
    assert steps_per_cell("split_mnist_class", full["split_mnist_class"], cumulative=True) == \
        (188 + 375 + 563 + 750 + 938) * 10
    # an iteration budget replaces the epochs
    assert steps_per_cell("split_mnist_task", full["split_mnist_task"], train_iterations=500) == 2500
    with pytest.raises(KeyError, match="benchmark"):
        steps_per_cell("split_mnist", full["split_mnist_class"])


def test_time_steps_trains_the_model_and_rejects_zero_steps():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    before = model[1].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    times = time_steps(model, opt, (1, 2, 2), 3, batch=8, steps=3)
    assert len(times) == 3
    assert not torch.equal(before, model[1].weight)
    with pytest.raises(ValueError, match="steps"):
        time_steps(model, opt, (1, 2, 2), 3, batch=8, steps=0)


def test_estimate_multi_head_method_and_cli_json(tmp_path, capsys):
    import avalanche_sparse.strategies  # noqa: F401

    protocol = get_preset("quick")["benchmarks"]["split_mnist_task"]
    r = estimate("naive", "split_mnist_task", protocol, steps=2)
    assert r["steps_per_cell"] == 95 and not r["cumulative"]
    assert r["train_step_hours"] == pytest.approx(r["step_s_median"] * 95 / 3600)
    # the cell's own strategy decides: Cumulative for joint, the method's batch size
    j = estimate("joint", "split_mnist_task", protocol, steps=1)
    assert j["cumulative"] and j["steps_per_cell"] == sum(-(-(k * 1200) // 64) for k in range(1, 6))
    out = tmp_path / "cost.json"
    assert main(["--methods", "naive", "--benchmark", "split_mnist_class", "--preset", "quick",
                 "--steps", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["results"][0]["method"] == "naive" and data["preset"] == "quick"
    capsys.readouterr()
    for bad, arg in [(["--benchmark", "split_mnist"], "--benchmark"), (["--preset", "nope"], "--preset"),
                     (["--methods", "nope"], "--methods"), (["--methods", "dendrites"], "--methods"),
                     (["--threads", "0"], "--threads"), (["--steps", "0"], "--steps")]:
        argv = {"--methods": "naive", "--benchmark": "split_mnist_class", "--preset": "quick"}
        argv[bad[0]] = bad[1]
        with pytest.raises(SystemExit):
            main([x for kv in argv.items() for x in kv] + (bad if bad[0] not in argv else []))
        assert arg in capsys.readouterr().err, bad


def test_estimate_dendritic_rows_with_their_task_context():
    import avalanche_sparse.strategies  # noqa: F401

    protocol = get_preset("quick")["benchmarks"]["permuted_mnist"]
    r = estimate("dendrites_si", "permuted_mnist", protocol, steps=1)
    # quick protocol: 3 experiences of 6000 images, batch 128, 1 epoch
    assert r["steps_per_cell"] == 3 * 47 and r["step_s_median"] > 0 and r["parameters"] > 0
