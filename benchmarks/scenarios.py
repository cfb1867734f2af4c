"""Fast Avalanche scenarios built from pre-transformed, in-memory tensors.

The stock Avalanche generators (``PermutedMNIST``, ``SplitMNIST``,
``SplitCIFAR10``) apply PIL/tensor transforms to every sample at every epoch.
The builders here apply the very same deterministic transforms once, keep the
result in memory as tensors, and hand them to Avalanche's own ``nc_benchmark``
generator. What comes back is therefore a genuine Avalanche
``NCScenario``: ``train_stream`` / ``test_stream``, experiences with
``task_labels`` and ``classes_in_this_experience``, usable by every stock
strategy, metric and logger.

Protocol parity with the stock generators (same arguments give the same
experiences):

* ``permuted_mnist``: the per-experience pixel permutations are drawn exactly
  as in ``avalanche.benchmarks.classic.PermutedMNIST`` (one
  ``numpy.random.RandomState(seed).permutation(784)`` per experience, the
  first experience permuted too), applied to the ``[0, 1]`` image before the
  ``Normalize((0.1307,), (0.3081,))`` transform.
* ``split_mnist`` / ``split_fmnist`` / ``split_cifar10``: the conventional class order
  ``0..9`` by default (stock ``SplitMNIST(seed=...)`` / ``SplitFMNIST``
  shuffle it unless ``fixed_class_order`` is given); ``scenario="task"`` gives task labels
  ``0..n-1`` (task-incremental), ``"class"`` a single task label 0.
* Fashion-MNIST: the stock transform of ``SplitFMNIST`` (``ToTensor`` +
  ``Normalize((0.2860,), (0.3530,))``, the same for training and evaluation).
* CIFAR-10: the stock *eval* transform (``ToTensor`` + ``Normalize``); the
  stock train-time random crop and flip are not applied (documented
  difference: augmentations cannot be precomputed once).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "FMNIST_MEAN",
    "FMNIST_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "SCENARIOS",
    "BenchmarkInfo",
    "LabelledTensorDataset",
    "tensor_split_benchmark",
    "tensor_permuted_benchmark",
    "permuted_mnist",
    "split_mnist",
    "split_fmnist",
    "split_cifar10",
    "BENCHMARK_BUILDERS",
    "subsample_indices",
    "pixel_permutations",
    "mnist_tensors",
    "fmnist_tensors",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: the normalisation of Avalanche's stock ``SplitFMNIST`` transforms
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
SCENARIOS = ("class", "task")


@dataclass(frozen=True)
class BenchmarkInfo:
    """What a model factory needs to know about a benchmark.

    :param name: registry name of the benchmark (``"split_mnist"``...).
    :param input_shape: shape of one sample, e.g. ``(1, 28, 28)``.
    :param n_classes: number of output classes of a single-head model.
    :param n_experiences: number of experiences in the stream.
    :param scenario: ``"class"``, ``"task"`` or ``"domain"``.
    :param label: human-readable name used in tables (e.g.
        ``"Split CIFAR-10 (JPEG copy)"``).
    """

    name: str
    input_shape: tuple[int, ...]
    n_classes: int
    n_experiences: int
    scenario: str
    label: str

    @property
    def multi_head(self) -> bool:
        """True for task-incremental benchmarks (task label known at test time)."""
        return self.scenario == "task"


class LabelledTensorDataset(TensorDataset):
    """A ``TensorDataset`` of ``(x, y)`` that exposes ``targets``.

    Avalanche reads ``targets`` directly instead of iterating the whole
    dataset to discover the labels.
    """

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}"
            )
        super().__init__(x, y)
        self.targets = y


def _check_int(name: str, value, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return int(value)


def _check_scenario(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise ValueError(
            f"scenario must be one of {list(SCENARIOS)}, got {scenario!r}"
        )
    return scenario


def _check_subsample(subsample: Optional[float]) -> Optional[float]:
    if subsample is None:
        return None
    if isinstance(subsample, bool) or not isinstance(subsample, (int, float)):
        raise TypeError(f"subsample must be a float in (0, 1] or None, got {subsample!r}")
    if not 0.0 < float(subsample) <= 1.0:
        raise ValueError(f"subsample must be in (0, 1] or None, got {subsample}")
    return float(subsample)


def subsample_indices(y: Tensor, fraction: Optional[float], seed: int) -> Tensor:
    """Stratified, seeded subset of indices keeping ``fraction`` of every class.

    At least one sample of every class present is kept. The indices are
    returned in ascending order so the original sample order is preserved.

    :param y: integer labels.
    :param fraction: fraction in (0, 1]; ``None`` or 1 keeps everything.
    :param seed: seed of the selection.
    """
    if fraction is None or fraction >= 1.0:
        return torch.arange(y.shape[0])
    gen = torch.Generator().manual_seed(int(seed))
    keep = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c, as_tuple=False).flatten()
        n = max(1, int(round(fraction * idx.numel())))
        keep.append(idx[torch.randperm(idx.numel(), generator=gen)[:n]])
    return torch.sort(torch.cat(keep)).values


def _check_divides(n_experiences: int, n_classes: int) -> None:
    if n_classes % n_experiences != 0:
        valid = [d for d in range(1, n_classes + 1) if n_classes % d == 0]
        raise ValueError(
            f"n_experiences={n_experiences} does not divide the {n_classes} classes;"
            f" valid values: {valid}"
        )


def tensor_split_benchmark(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    n_experiences: int,
    *,
    scenario: str = "class",
    fixed_class_order: Optional[Sequence[int]] = None,
    seed: Optional[int] = 0,
):
    """Class-split benchmark (Split MNIST style) over in-memory tensors.

    :param x_train: pre-transformed training inputs, ``(N, ...)`` float.
    :param y_train: training labels ``(N,)`` int64.
    :param n_experiences: number of experiences; must divide the classes.
    :param scenario: ``"class"`` (one task label) or ``"task"`` (task label
        per experience, task-incremental).
    :param fixed_class_order: class order; defaults to ascending class ids.
    :return: an Avalanche ``NCScenario``.
    """
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    _check_scenario(scenario)
    classes = sorted(torch.unique(y_train).tolist())
    _check_int("n_experiences", n_experiences, 1, len(classes))
    _check_divides(n_experiences, len(classes))
    order = list(classes) if fixed_class_order is None else list(fixed_class_order)
    if sorted(order) != classes:
        raise ValueError(
            f"fixed_class_order must be a permutation of the classes {classes}, got {order}"
        )
    return nc_benchmark(
        LabelledTensorDataset(x_train, y_train),
        LabelledTensorDataset(x_test, y_test),
        n_experiences=n_experiences,
        task_labels=scenario == "task",
        shuffle=False,
        seed=seed,
        fixed_class_order=order,
    )


def pixel_permutations(n_experiences: int, n_pixels: int, seed: Optional[int]) -> list[Tensor]:
    """The per-experience pixel permutations, drawn as the stock generator does."""
    rng = np.random.RandomState(seed)
    return [
        torch.from_numpy(rng.permutation(n_pixels)).to(torch.int64)
        for _ in range(n_experiences)
    ]


def tensor_permuted_benchmark(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    n_experiences: int,
    *,
    seed: Optional[int] = 0,
    normalize: Callable[[Tensor], Tensor] = lambda t: t,
    return_task_id: bool = False,
):
    """Permuted benchmark (domain-incremental) over in-memory tensors.

    Every experience holds the whole dataset under its own fixed pixel
    permutation (the first experience too, as in the stock generator).

    :param x_train: inputs in ``[0, 1]``, shape ``(N, C, H, W)``.
    :param normalize: applied after the permutation (the stock
        ``Normalize`` transform).
    :param return_task_id: task label per experience instead of 0.
    """
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    _check_int("n_experiences", n_experiences, 1)
    shape = tuple(x_train.shape[1:])
    n_pixels = int(np.prod(shape))
    trains, tests = [], []
    for perm in pixel_permutations(n_experiences, n_pixels, seed):
        xtr = normalize(x_train.reshape(-1, n_pixels)[:, perm].reshape(-1, *shape))
        xte = normalize(x_test.reshape(-1, n_pixels)[:, perm].reshape(-1, *shape))
        trains.append(LabelledTensorDataset(xtr.contiguous(), y_train))
        tests.append(LabelledTensorDataset(xte.contiguous(), y_test))
    return nc_benchmark(
        trains,
        tests,
        n_experiences=n_experiences,
        task_labels=return_task_id,
        shuffle=False,
        class_ids_from_zero_in_each_exp=True,
        one_dataset_per_exp=True,
    )


def _idx_tensors(loader: Callable, root, subsample: Optional[float], seed: int):
    x_train, y_train, x_test, y_test = loader(root)
    itr = subsample_indices(y_train, subsample, seed)
    ite = subsample_indices(y_test, subsample, seed + 1)
    to01 = lambda x: (x.to(torch.float32) / 255.0).unsqueeze(1)  # noqa: E731
    return to01(x_train[itr]), y_train[itr].long(), to01(x_test[ite]), y_test[ite].long()


def mnist_tensors(root=None, subsample: Optional[float] = None, seed: int = 0):
    """MNIST as float tensors in ``[0, 1]``, shape ``(N, 1, 28, 28)``, with labels.

    :return: ``(x_train, y_train, x_test, y_test)``.
    """
    from .data import load_mnist

    return _idx_tensors(load_mnist, root, subsample, seed)


def fmnist_tensors(root=None, subsample: Optional[float] = None, seed: int = 0):
    """Fashion-MNIST as float tensors in ``[0, 1]``, shape ``(N, 1, 28, 28)``, with labels.

    :return: ``(x_train, y_train, x_test, y_test)``.
    """
    from .data import load_fmnist

    return _idx_tensors(load_fmnist, root, subsample, seed)


def _mnist_normalize(x: Tensor) -> Tensor:
    return (x - MNIST_MEAN) / MNIST_STD


def permuted_mnist(
    n_experiences: int = 10,
    *,
    seed: Optional[int] = 0,
    root: str | Path | None = None,
    subsample: Optional[float] = None,
    return_task_id: bool = False,
):
    """Permuted MNIST (domain-incremental), same protocol as Avalanche's ``PermutedMNIST``.

    :param n_experiences: number of permutations (experiences), >= 1.
    :param seed: seed of the permutations (and of the subsample).
    :param root: data root (see :func:`avalanche_sparse.benchmarks.data.default_root`).
    :param subsample: keep this fraction of every class (train and test), for
        quick runs; ``None`` keeps all 60k/10k samples.
    :param return_task_id: give experience ``i`` task label ``i``.

    Reference: Goodfellow et al. 2013, "An Empirical Investigation of
    Catastrophic Forgetting in Gradient-Based Neural Networks".
    """
    _check_int("n_experiences", n_experiences, 1)
    subsample = _check_subsample(subsample)
    s = 0 if seed is None else int(seed)
    xtr, ytr, xte, yte = mnist_tensors(root, subsample, s)
    return tensor_permuted_benchmark(
        xtr, ytr, xte, yte, n_experiences, seed=seed,
        normalize=_mnist_normalize, return_task_id=return_task_id,
    )


def split_mnist(
    n_experiences: int = 5,
    *,
    scenario: str = "class",
    seed: Optional[int] = 0,
    root: str | Path | None = None,
    subsample: Optional[float] = None,
    fixed_class_order: Optional[Sequence[int]] = None,
):
    """Split MNIST: the ten digits in ``n_experiences`` groups, order ``0..9``.

    :param n_experiences: must divide 10 (1, 2, 5 or 10).
    :param scenario: ``"class"`` (class-incremental, single head) or
        ``"task"`` (task-incremental, task label per experience).
    :param subsample: keep this fraction of every class, for quick runs.
    :param fixed_class_order: another class order (default ``0..9``).

    Reference: Zenke et al. 2017, "Continual Learning Through Synaptic
    Intelligence"; van de Ven & Tolias 2019, "Three scenarios for continual
    learning".
    """
    _check_int("n_experiences", n_experiences, 1, 10)
    _check_divides(n_experiences, 10)
    _check_scenario(scenario)
    subsample = _check_subsample(subsample)
    s = 0 if seed is None else int(seed)
    xtr, ytr, xte, yte = mnist_tensors(root, subsample, s)
    return tensor_split_benchmark(
        _mnist_normalize(xtr), ytr, _mnist_normalize(xte), yte, n_experiences,
        scenario=scenario, fixed_class_order=fixed_class_order, seed=seed,
    )


def split_fmnist(
    n_experiences: int = 5,
    *,
    scenario: str = "class",
    seed: Optional[int] = 0,
    root: str | Path | None = None,
    subsample: Optional[float] = None,
    fixed_class_order: Optional[Sequence[int]] = None,
):
    """Split Fashion-MNIST: the ten clothing classes in ``n_experiences`` groups, order ``0..9``.

    Same protocol as Avalanche's stock ``SplitFMNIST(n_experiences,
    return_task_id=scenario == "task", fixed_class_order=list(range(10)))``:
    the same experiences, samples and pixels (``ToTensor`` then
    ``Normalize((0.2860,), (0.3530,))``, applied once here). Data staged by
    ``python -m avalanche_sparse.benchmarks.data fetch fmnist``.

    :param n_experiences: must divide 10 (1, 2, 5 or 10).
    :param scenario: ``"class"`` (class-incremental, single head) or
        ``"task"`` (task-incremental, task label per experience).
    :param subsample: keep this fraction of every class, for quick runs.
    :param fixed_class_order: another class order (default ``0..9``).

    Reference: Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image
    Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747;
    the split protocol as in van de Ven & Tolias 2019, "Three scenarios for
    continual learning".
    """
    _check_int("n_experiences", n_experiences, 1, 10)
    _check_divides(n_experiences, 10)
    _check_scenario(scenario)
    subsample = _check_subsample(subsample)
    s = 0 if seed is None else int(seed)
    xtr, ytr, xte, yte = fmnist_tensors(root, subsample, s)
    norm = lambda x: (x - FMNIST_MEAN) / FMNIST_STD  # noqa: E731
    return tensor_split_benchmark(
        norm(xtr), ytr, norm(xte), yte, n_experiences,
        scenario=scenario, fixed_class_order=fixed_class_order, seed=seed,
    )


def split_cifar10(
    n_experiences: int = 5,
    *,
    scenario: str = "class",
    seed: Optional[int] = 0,
    root: str | Path | None = None,
    subsample: Optional[float] = None,
    fixed_class_order: Optional[Sequence[int]] = None,
    source: str = "auto",
):
    """Split CIFAR-10: the ten classes in ``n_experiences`` groups, order ``0..9``.

    :param source: ``"original"`` (the genuine ``cifar-10-batches-py``
        files), ``"jpeg"`` (the JPEG copy, always reported as
        "CIFAR-10 (JPEG copy)") or ``"auto"`` (original when staged, else the
        JPEG copy). The source used is stored on the returned benchmark as
        ``benchmark.cifar10_source``.

    Other parameters as in :func:`split_mnist`.
    """
    from .data import load_cifar10

    _check_int("n_experiences", n_experiences, 1, 10)
    _check_divides(n_experiences, 10)
    _check_scenario(scenario)
    subsample = _check_subsample(subsample)
    if source not in ("auto", "original", "jpeg"):
        raise ValueError(f"source must be 'auto', 'original' or 'jpeg', got {source!r}")
    s = 0 if seed is None else int(seed)
    x_train, y_train, x_test, y_test, used = load_cifar10(root, source=source)
    itr = subsample_indices(y_train, subsample, s)
    ite = subsample_indices(y_test, subsample, s + 1)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    prep = lambda x: ((x.to(torch.float32) / 255.0) - mean) / std  # noqa: E731
    bm = tensor_split_benchmark(
        prep(x_train[itr]), y_train[itr].long(), prep(x_test[ite]), y_test[ite].long(),
        n_experiences, scenario=scenario, fixed_class_order=fixed_class_order, seed=seed,
    )
    bm.cifar10_source = used
    return bm


#: name -> builder; used by the Table 1 runner through the presets.
BENCHMARK_BUILDERS: dict[str, Callable] = {
    "permuted_mnist": permuted_mnist,
    "split_mnist": split_mnist,
    "split_fmnist": split_fmnist,
    "split_cifar10": split_cifar10,
}
