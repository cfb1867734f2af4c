"""``FastTensorLoaderPlugin``: Avalanche's own loaders, minus the per-sample fetch.

Every Avalanche training/eval loader in 0.6 (``TaskBalancedDataLoader``,
``ReplayDataLoader``, ``GroupBalancedDataLoader``,
``SingleDatasetDataLoader``) is a ``MultiDatasetDataLoader``: each epoch it
builds Avalanche's ``MultiDatasetSampler`` (the shuffling, batch sizes,
``drop_last``, oversampling and replay mixing) and hands it, with
``ConcatDataset(datasets)``, to a torch ``DataLoader`` that fetches the
samples one by one and collates them.

The plugin replaces only that last step. After the strategy (and every
plugin before it, e.g. ``ReplayPlugin``) has made ``strategy.dataloader``, it
swaps in a copy of the same loader whose torch ``DataLoader`` reads from a
:class:`~avalanche_sparse.benchmarks.batched.BatchedTensorView` of the same
datasets: same sampler, same random-number draws, hence the same minibatches
in the same order, each built by one tensor gather instead of
``batch_size`` walks through Avalanche's dataset layers. The copy is an
instance of a subclass of the original loader class (``isinstance`` checks
still hold); nothing in Avalanche is patched.

When the datasets are not tensor-backed with empty transforms, the collate
function is not ``default_collate``, FFCV is in use, or the loader is not one
of Avalanche's multi-dataset loaders, the stock loader is kept
(``plugin.fallbacks`` counts those, ``plugin.last_fallback`` says why).
"""
from __future__ import annotations

from typing import Optional

from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader, default_collate

__all__ = ["FastTensorLoaderPlugin", "batched_loader"]

_SUBCLASSES: dict[type, type] = {}
_DROP = ("batch_size", "shuffle", "sampler", "drop_last", "ffcv_args", "collate_fn")


def _already_collated(batch):
    """``collate_fn`` of the batched loader: the view returns a collated batch."""
    return batch


class _BatchedFetch:
    """Mixin over an Avalanche ``MultiDatasetDataLoader`` subclass: the torch
    loader it builds every epoch fetches whole minibatches from a view."""

    _batched_view = None

    def _get_loader(self):
        """Avalanche's ``MultiDatasetDataLoader._get_loader`` without its
        per-epoch FFCV probe (a per-sample walk over the datasets; FFCV was
        ruled out once, when the loader was batched)."""
        from avalanche.benchmarks.utils.data_loader import MultiDatasetSampler

        samplers = self._create_samplers(self.datasets, self.batch_sizes,
                                         self.distributed_sampling, self.loader_kwargs)
        batch_sampler = MultiDatasetSampler(
            self.datasets, samplers, termination_dataset_idx=self.termination_dataset,
            oversample_small_datasets=self.oversample_small_datasets,
            never_ending=self.never_ending)
        return self._make_pytorch_loader(self.datasets, batch_sampler)

    def _make_pytorch_loader(self, datasets, batch_sampler):
        kwargs = {k: v for k, v in self.loader_kwargs.items() if k not in _DROP}
        return DataLoader(self._batched_view, batch_sampler=batch_sampler,
                          collate_fn=_already_collated, **kwargs)


def _batched_class(cls: type) -> type:
    if cls not in _SUBCLASSES:
        _SUBCLASSES[cls] = type(f"Batched{cls.__name__}", (_BatchedFetch, cls),
                                {"__module__": __name__})
    return _SUBCLASSES[cls]


def batched_loader(loader) -> tuple[Optional[object], str]:
    """The batched twin of Avalanche loader ``loader``, or ``(None, reason)``.

    :return: ``(new_loader, "")`` on success (``loader`` itself if it is
        already batched), else ``(None, why it cannot be batched)``.
    """
    from avalanche.benchmarks.utils.data_loader import MultiDatasetDataLoader

    from avalanche_sparse.benchmarks.batched import BatchedTensorView, NotTensorBacked

    if isinstance(loader, _BatchedFetch):
        return loader, ""
    if not isinstance(loader, MultiDatasetDataLoader):
        return None, f"{type(loader).__name__} is not an Avalanche MultiDatasetDataLoader"
    if loader.loader_kwargs.get("collate_fn", default_collate) is not default_collate:
        return None, "the collate function is not default_collate"
    try:
        view = BatchedTensorView(loader.datasets)
    except NotTensorBacked as err:
        return None, str(err)
    if any(hasattr(leaf, "ffcv_info") for leaf in view.leaves):
        return None, "FFCV loading is enabled on the data"
    new = object.__new__(_batched_class(type(loader)))
    new.__dict__.update(loader.__dict__)
    new._persistent_loader = None
    new._batched_view = view
    return new, ""


class FastTensorLoaderPlugin(SupervisedPlugin):
    """Serves minibatches of tensor-backed experiences by tensor gathers.

    Place it **last** in the plugin list: it acts in ``before_training_epoch``
    (after every ``before_training_exp``, where Avalanche and e.g.
    ``ReplayPlugin`` make ``strategy.dataloader``) and in ``before_eval_exp``
    (after ``make_eval_dataloader``). Minibatches, their order and the random
    number stream are those of the stock loader (see module docstring).

    ``swaps`` and ``fallbacks`` count the loaders batched and kept (once per
    loader, i.e. per experience); ``last_fallback`` gives the last reason.

    :param train: batch the training loaders.
    :param eval: batch the evaluation loaders.
    """

    def __init__(self, *, train: bool = True, eval: bool = True) -> None:
        super().__init__()
        if not isinstance(train, bool) or not isinstance(eval, bool):
            raise TypeError(f"train and eval must be bool, got {train!r} and {eval!r}")
        self.train, self.eval = train, eval
        self.swaps = 0
        self.fallbacks = 0
        self.last_fallback: str = ""
        self._refused = None  # the last loader found not batchable (not retried)

    def _swap(self, strategy) -> None:
        current = strategy.dataloader
        if isinstance(current, _BatchedFetch) or current is self._refused:
            return
        new, why = batched_loader(current)
        if new is None:
            self.fallbacks += 1
            self.last_fallback = why
            self._refused = current
            return
        strategy.dataloader = new
        self.swaps += 1

    def before_training_epoch(self, strategy, *args, **kwargs):
        if self.train:
            self._swap(strategy)

    def before_eval_exp(self, strategy, *args, **kwargs):
        if self.eval:
            self._swap(strategy)
