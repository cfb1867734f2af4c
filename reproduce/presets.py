"""Benchmarks of the Table 1 grid and the protocols of each preset.

A *grid benchmark* is a named call of a scenario builder from
:mod:`avalanche_sparse.benchmarks` (``split_mnist_task`` is
``split_mnist(scenario="task")``). A *preset* gives, per grid benchmark, the
protocol: builder arguments (experiences, subsample) and training settings
(epochs, batch sizes, optimizer, lr, network size). Methods may override the
training settings through the registry (``hparams_by_benchmark``).

``full`` follows the published protocols (Avalanche's
continual-learning-baselines, DESIGN.md section 4) and runs 3 seeds; ``quick``
is a reduced smoke run of every method on every benchmark that finishes in a
few minutes on 2 CPU cores.
"""
from __future__ import annotations

import copy
import hashlib
import json

__all__ = ["GRID_BENCHMARKS", "PRESETS", "BUILDER_KEYS", "get_preset", "preset_fingerprint",
           "benchmark_twin", "runs_on"]

#: grid benchmark -> (builder name, fixed builder kwargs, scenario kind, input shape, label).
#: ``twin``: a benchmark run with the same protocol on other data; a method's
#: per-benchmark overrides and benchmark list that name the twin (and not this
#: benchmark) apply here too, so every method with a Split MNIST row also gets
#: a Split Fashion-MNIST row (see :func:`benchmark_twin`).
GRID_BENCHMARKS: dict[str, dict] = {
    "permuted_mnist": dict(builder="permuted_mnist", kwargs={}, scenario="domain",
                           input_shape=(1, 28, 28), n_classes=10, label="Permuted MNIST (domain-IL)"),
    "split_mnist_class": dict(builder="split_mnist", kwargs={"scenario": "class"}, scenario="class",
                              input_shape=(1, 28, 28), n_classes=10, label="Split MNIST (class-IL)"),
    "split_mnist_task": dict(builder="split_mnist", kwargs={"scenario": "task"}, scenario="task",
                             input_shape=(1, 28, 28), n_classes=10, label="Split MNIST (task-IL)"),
    "split_fmnist_class": dict(builder="split_fmnist", kwargs={"scenario": "class"}, scenario="class",
                               input_shape=(1, 28, 28), n_classes=10,
                               label="Split Fashion-MNIST (class-IL)", twin="split_mnist_class"),
    "split_fmnist_task": dict(builder="split_fmnist", kwargs={"scenario": "task"}, scenario="task",
                              input_shape=(1, 28, 28), n_classes=10,
                              label="Split Fashion-MNIST (task-IL)", twin="split_mnist_task"),
    "split_cifar10_class": dict(builder="split_cifar10", kwargs={"scenario": "class"}, scenario="class",
                                input_shape=(3, 32, 32), n_classes=10, label="Split CIFAR-10 (class-IL)"),
}

#: protocol keys that go to the scenario builder; the rest are training hparams
BUILDER_KEYS = ("n_experiences", "subsample")

_MNIST_MLP = {"optimizer": "adam", "lr": 1e-3, "eval_mb_size": 1024}

PRESETS: dict[str, dict] = {
    "full": {
        "seeds": [0, 1, 2],
        "benchmarks": {
            # continual-learning-baselines SI / EWC on Permuted MNIST: MLP 1x1000,
            # 10 epochs, batch 256, Adam 1e-3
            "permuted_mnist": {**_MNIST_MLP, "n_experiences": 10, "subsample": None,
                               "train_epochs": 10, "train_mb_size": 256, "hidden_sizes": [1000]},
            # continual-learning-baselines Split MNIST: MLP 2x256, 10 epochs, batch 64, Adam 1e-3
            "split_mnist_class": {**_MNIST_MLP, "n_experiences": 5, "subsample": None,
                                  "train_epochs": 10, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_mnist_task": {**_MNIST_MLP, "n_experiences": 5, "subsample": None,
                                 "train_epochs": 10, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            # Split Fashion-MNIST: the Split MNIST protocol on harder images
            "split_fmnist_class": {**_MNIST_MLP, "n_experiences": 5, "subsample": None,
                                   "train_epochs": 10, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_fmnist_task": {**_MNIST_MLP, "n_experiences": 5, "subsample": None,
                                  "train_epochs": 10, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_cifar10_class": {"optimizer": "adam", "lr": 1e-3, "eval_mb_size": 1024,
                                    "n_experiences": 5, "subsample": None, "train_epochs": 10,
                                    "train_mb_size": 64, "model": "cnn", "channels": [32, 64],
                                    "hidden_size": 256},
        },
    },
    "quick": {
        "seeds": [0],
        "benchmarks": {
            "permuted_mnist": {**_MNIST_MLP, "n_experiences": 3, "subsample": 0.1,
                               "train_epochs": 1, "train_mb_size": 128, "hidden_sizes": [256]},
            "split_mnist_class": {**_MNIST_MLP, "n_experiences": 5, "subsample": 0.1,
                                  "train_epochs": 1, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_mnist_task": {**_MNIST_MLP, "n_experiences": 5, "subsample": 0.1,
                                 "train_epochs": 1, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_fmnist_class": {**_MNIST_MLP, "n_experiences": 5, "subsample": 0.1,
                                   "train_epochs": 1, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_fmnist_task": {**_MNIST_MLP, "n_experiences": 5, "subsample": 0.1,
                                  "train_epochs": 1, "train_mb_size": 64, "hidden_sizes": [256, 256]},
            "split_cifar10_class": {"optimizer": "adam", "lr": 1e-3, "eval_mb_size": 1024,
                                    "n_experiences": 5, "subsample": 0.05, "train_epochs": 1,
                                    "train_mb_size": 64, "model": "cnn", "channels": [16, 32],
                                    "hidden_size": 128},
        },
    },
}


# --- Active Dendrites, accuracy vs number of tasks (Iyer et al. 2022) ----------
# The reference reports its prototype network on 2, 5, 10, 25, 50 and 100
# Permuted MNIST tasks. One preset per task count (the 10-task cells are the
# full preset's); the full preset's Permuted MNIST protocol with the number of
# experiences changed, the `dendrites` row by default, and a label that names
# the task count. The row takes the reference's epochs and lr for that count
# (``paper_protocol_by_tasks`` in strategies/dendrites.py).
for _n in (2, 5, 25):
    PRESETS[f"dendrites_tasks_{_n}"] = {
        "seeds": [0, 1, 2],
        "methods": ["dendrites"],
        "benchmarks": {"permuted_mnist": {**PRESETS["full"]["benchmarks"]["permuted_mnist"],
                                          "n_experiences": _n,
                                          "label": f"Permuted MNIST, {_n} tasks (domain-IL)"}},
    }
del _n


def get_preset(name: str) -> dict:
    """A deep copy of preset ``name``; the error lists the valid names."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return copy.deepcopy(PRESETS[name])


def benchmark_twin(benchmark: str, names) -> str:
    """The name under which a method's settings for ``benchmark`` are looked up.

    ``benchmark`` itself when ``names`` (a method's ``hparams_by_benchmark``
    keys or ``benchmarks`` list) contains it or it has no twin; otherwise its
    twin (``split_fmnist_class`` -> ``split_mnist_class``) when ``names``
    contains that.
    """
    twin = GRID_BENCHMARKS.get(benchmark, {}).get("twin")
    names = () if names is None else names
    if benchmark in names or twin is None or twin not in names:
        return benchmark
    return twin


def runs_on(benchmarks, benchmark: str) -> bool:
    """Whether a method with benchmark list ``benchmarks`` (None: all) has a
    cell on ``benchmark``, directly or through its twin."""
    return benchmarks is None or benchmark_twin(benchmark, benchmarks) in benchmarks


def preset_fingerprint(preset: dict) -> str:
    """Short hash of a preset's protocol (seeds excluded: adding seeds is fine)."""
    body = json.dumps(preset["benchmarks"], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


# --- SDM (Bricken et al. 2023) -------------------------------------------------
# The paper's continual-learning protocol, for the SDM rows (``sdmlp``, ``topk``,
# ``sdmlp_ewc``, ``sdmlp_sgdm``, ``sdmlp_adam``) and the ReLU MLP baselines of the
# paper (``naive`` = its "ReLU SGD", ``ewc``, ``si``; 1K neurons, plain SGD lr
# 0.05, batch 128). From the reference code (TrentBrick/SDMContinualLearner,
# exp_commands/cont_learn_on_SplitMNIST.py and ..._SplitCIFAR10_pixels.py):
# 500 epochs per task on Split MNIST (no pretraining), GABA switch after
# 5,000,000 activations, Top-K baseline annealing k over 200 epochs; 2000 epochs
# per task on Split CIFAR-10 (the reference's default T = 500,000 and k
# transition of 50 epochs). GPU-scale: about 2,500 (MNIST) and 10,000 (CIFAR-10)
# epochs per cell. Differences that cannot be removed here: the paper's CIFAR-10
# rows start from ImageNet32 pretraining (ConvMixer embeddings or pixels) that is
# not available, so these are CIFAR-10 pixels (JPEG copy) with no pretraining.
PRESETS["sdm_paper"] = {
    "seeds": [0, 1, 2, 3, 4],
    "benchmarks": {
        "split_mnist_class": {"n_experiences": 5, "subsample": None, "train_epochs": 500,
                              "train_mb_size": 128, "eval_mb_size": 1024, "optimizer": "sgd",
                              "lr": 0.05, "hidden_sizes": [1000],
                              "gaba_switch_activations": 5_000_000, "k_transition_epochs": 200},
        "split_cifar10_class": {"n_experiences": 5, "subsample": None, "train_epochs": 2000,
                                "train_mb_size": 128, "eval_mb_size": 1024, "optimizer": "sgd",
                                "lr": 0.05, "model": "mlp", "hidden_sizes": [1000],
                                "gaba_switch_activations": 500_000, "k_transition_epochs": 50},
    },
}
