r"""Sparse networks in any Avalanche strategy, and their Table 1 rows.

:class:`SparseNetworkPlugin` keeps the network of a strategy sparse: after
every optimizer step it sets the pruned weights of each
:class:`~avalanche_sparse.layers.SparseWeights` layer back to zero
(``rezero_weights``; optimizers know nothing of the fixed masks, and a single
momentum or Adam step makes every weight non-zero again), and at the end of
every training epoch it decays the boost strength of each k-WTA layer,
:math:`\beta \leftarrow \beta \cdot` ``boost_strength_factor``
(``update_boost_strength``). This is the training loop of ``nupic.torch``
(Ahmad & Scheinkman 2019, arXiv:1903.11257) as a plugin, so it composes with
any strategy: ``Naive``, ``EWC``, ``SynapticIntelligence``, ``Replay``...

Registered rows (the seed "sparse-dynamic-synapses", DESIGN.md section 5):

* ``sparse_mlp`` -- :class:`~avalanche_sparse.models.SparseMLP` (multi-head
  twin for task-IL) with the plugin, Naive fine-tuning. Not on Split CIFAR-10.
* ``dense_mlp`` -- the dense twin (``sparsify=False``): same network sizes,
  dropout, optimizer and budget as ``sparse_mlp``.
* ``sparse_cnn`` / ``dense_cnn`` -- :class:`~avalanche_sparse.models.SparseCNN`
  and its dense twin on Split CIFAR-10.

The full-preset Permuted MNIST settings are the seed's own result files
(``MLP_1Layer[Sparse]``: one hidden layer of 4000 units, 0.1 % of them active
(k = 4), k_inference_factor 1, boost strength 1 without decay, dropout 0.5, SGD
lr 0.1 with Nesterov momentum 0.9 and weight decay 1e-4, batch 128, 2 epochs
per task). Those runs predate the seed's use of ``SparseWeights`` in its MLP,
so the weights there are dense (``weight_sparsity_fc = 1.0``); elsewhere the
seed's default of 10 % non-zero weights applies.
"""
from __future__ import annotations

from avalanche.core import SupervisedPlugin

from avalanche_sparse.layers import rezero_weights, update_boost_strength

from .registry import Method, MethodContext, default_optimizer, register

__all__ = [
    "SparseNetworkPlugin",
    "sparse_model",
    "dense_twin_model",
    "SPARSE_MLP",
    "DENSE_MLP",
    "SPARSE_CNN",
    "DENSE_CNN",
    "SEED_PERMUTED_MNIST",
    "SEED_SPLIT_MNIST",
    "SEED_SPLIT_CIFAR10",
    "seed_settings",
]


class SparseNetworkPlugin(SupervisedPlugin):
    """Keep a sparse network sparse and decay its boosting, in any strategy.

    * ``after_update`` (after every optimizer step): ``rezero_weights(model)``
      -- each sparse layer's pruned weights are set back to exactly zero.
    * ``before_training_exp``: the same, so that a model changed outside
      training (loaded, perturbed) starts every experience sparse.
    * ``after_training_epoch``: ``update_boost_strength(model)`` -- each k-WTA
      layer multiplies its boost strength by its ``boost_strength_factor``.

    Works on any model: modules without these methods are left alone (a dense
    model makes the plugin a no-op).

    :param rezero: re-zero pruned weights after every optimizer step.
    :param decay_boost: decay the boost strength at the end of every epoch.
    """

    def __init__(self, *, rezero: bool = True, decay_boost: bool = True) -> None:
        super().__init__()
        if not isinstance(rezero, bool) or not isinstance(decay_boost, bool):
            raise TypeError(f"rezero and decay_boost must be bools, got {rezero!r}, {decay_boost!r}")
        self.rezero = rezero
        self.decay_boost = decay_boost
        #: optimizer steps after which the weights were re-zeroed
        self.rezero_steps = 0
        #: epochs at whose end the boost strength was decayed
        self.boost_updates = 0

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        if self.rezero:
            rezero_weights(strategy.model)

    def after_update(self, strategy, *args, **kwargs) -> None:
        if self.rezero:
            rezero_weights(strategy.model)
            self.rezero_steps += 1

    def after_training_epoch(self, strategy, *args, **kwargs) -> None:
        if self.decay_boost:
            update_boost_strength(strategy.model)
            self.boost_updates += 1


# ----------------------------------------------------------------------------
# registry rows
# ----------------------------------------------------------------------------
#: the seed's parameter names, with the defaults used when a preset says nothing
_SPARSE_DEFAULTS = {
    "hidden_units": 1000,
    "hidden_layers": 1,
    "dropout": 0.5,
    "percent_on_fc": 0.1,
    "percent_on_conv": 0.1,
    "weight_sparsity_fc": 0.1,  # fraction of NON-zero weights (the seed's meaning)
    "weight_sparsity_conv": 1.0,  # fraction of NON-zero weights; 1 = dense kernels
    "k_inference_factor": 1.5,
    "boost_strength": 1.0,
    "boost_strength_factor": 0.9,
    "duty_cycle_period": 1000,
    "channels": [64, 128],
}


def _model(ctx: MethodContext, sparsify: bool):
    from avalanche_sparse.models import MultiHeadSparseCNN, MultiHeadSparseMLP, SparseCNN, SparseMLP

    info, hp = ctx.benchmark, ctx.hparams
    shape = tuple(info.input_shape)
    common = dict(
        hidden_units=int(hp["hidden_units"]), dropout=float(hp["dropout"]), sparsify=sparsify,
        percent_on_fc=float(hp["percent_on_fc"]), weight_sparsity_fc=float(hp["weight_sparsity_fc"]),
        k_inference_factor=float(hp["k_inference_factor"]), boost_strength=float(hp["boost_strength"]),
        boost_strength_factor=float(hp["boost_strength_factor"]),
        duty_cycle_period=int(hp["duty_cycle_period"]), seed=int(ctx.seed),
    )
    if hp.get("cnn", False):
        cls = MultiHeadSparseCNN if info.multi_head else SparseCNN
        return cls(shape[0], info.n_classes, image_size=int(shape[-1]),
                   channels=tuple(int(c) for c in hp["channels"]),
                   percent_on_conv=float(hp["percent_on_conv"]),
                   weight_sparsity_conv=float(hp["weight_sparsity_conv"]), **common)
    n_in = 1
    for s in shape:
        n_in *= int(s)
    cls = MultiHeadSparseMLP if info.multi_head else SparseMLP
    return cls(n_in, info.n_classes, hidden_layers=int(hp["hidden_layers"]), **common)


def sparse_model(ctx: MethodContext):
    """The sparse network of ``ctx.hparams`` (MLP, or CNN when ``cnn`` is true;
    multi-head on task-incremental benchmarks)."""
    return _model(ctx, True)


def dense_twin_model(ctx: MethodContext):
    """The same network with ``sparsify=False``."""
    return _model(ctx, False)


def _plugins(ctx: MethodContext) -> list:
    return [SparseNetworkPlugin()]


#: Permuted MNIST, the seed's runs with published results (its result files
#: MLP_1Layer / MLP_1LayerSparse, DESIGN.md section 5); dense weights, see the
#: module docstring
SEED_PERMUTED_MNIST = {
    "hidden_units": 4000, "hidden_layers": 1, "dropout": 0.5, "percent_on_fc": 0.001,
    "weight_sparsity_fc": 1.0, "k_inference_factor": 1.0, "boost_strength": 1.0,
    "boost_strength_factor": 1.0, "duty_cycle_period": 1000,
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
    "train_mb_size": 128, "train_epochs": 2,
}
#: Split MNIST, the seed's ``SplitMNIST`` section (2 x 4000 units, 0.8 % active,
#: 50 % non-zero weights, no boosting, SGD lr 0.1 momentum 0.9, batch 128); the
#: epochs per experience are the grid protocol's (the seed used 30)
SEED_SPLIT_MNIST = {
    "hidden_units": 4000, "hidden_layers": 2, "dropout": 0.5, "percent_on_fc": 0.008,
    "weight_sparsity_fc": 0.5, "k_inference_factor": 1.0, "boost_strength": 0.0,
    "boost_strength_factor": 1.0, "duty_cycle_period": 1000,
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
    "train_mb_size": 128,
}
#: Split CIFAR-10, the seed's release ``DEFAULT`` (CIFAR) section: convs of 64
#: and 128 channels, FC 1024, dropout 0.5, 10 % active / 10 % non-zero FC
#: weights, 99 % active channels and 99 % non-zero kernel weights, no boosting,
#: plain SGD lr 0.01, batch 128; epochs from the grid protocol (the seed used 30)
SEED_SPLIT_CIFAR10 = {
    "cnn": True, "channels": [64, 128], "hidden_units": 1024, "dropout": 0.5,
    "percent_on_fc": 0.1, "percent_on_conv": 0.99, "weight_sparsity_fc": 0.1,
    "weight_sparsity_conv": 0.99, "k_inference_factor": 1.0, "boost_strength": 0.0,
    "boost_strength_factor": 1.0, "duty_cycle_period": 1000,
    "optimizer": "sgd", "lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
    "train_mb_size": 128,
}

#: on subsampled protocols (the quick preset) the networks are shrunk so that
#: a cell stays well under a minute on 2 CPU cores; everything else is kept
QUICK_PERMUTED_MNIST = {"hidden_units": 256, "percent_on_fc": 0.016, "train_epochs": 1}  # k = 4 as the seed
QUICK_SPLIT_MNIST = {"hidden_units": 256, "percent_on_fc": 0.125}  # k = 32 as the seed
QUICK_CNN = {"channels": [8, 16], "hidden_units": 64, "percent_on_conv": 0.25}


def seed_settings(full: dict, quick: dict):
    """``protocol -> hparams``: ``full`` on the full data (``subsample`` None),
    ``full`` updated with ``quick`` on subsampled (smoke-run) protocols."""

    def settings(protocol: dict) -> dict:
        if protocol.get("subsample") is None:
            return dict(full)
        return {**full, **quick}

    return settings


def _register_pair(name: str, what: str, hparams: dict, by_bench: dict, benchmarks) -> tuple:
    sparse = register(Method(
        name=f"sparse_{name}",
        description=f"sparse {what} (SparseWeights + k-WTA + boosting, DESIGN.md s.5) with "
                    "SparseNetworkPlugin, Naive",
        model=sparse_model, optimizer=default_optimizer, plugins=_plugins,
        strategy="avalanche.training.Naive", hparams=dict(hparams),
        hparams_by_benchmark=dict(by_bench), benchmarks=benchmarks,
    ))
    dense = register(Method(
        name=f"dense_{name}",
        description=f"dense twin of sparse_{name}: same {what}, optimizer and budget, "
                    "ReLU and full weights (sparsify=False), Naive",
        model=dense_twin_model, optimizer=default_optimizer, plugins=_plugins,
        strategy="avalanche.training.Naive", hparams=dict(hparams),
        hparams_by_benchmark=dict(by_bench), benchmarks=benchmarks,
    ))
    return sparse, dense


_MLP_BENCHES = {
    "permuted_mnist": seed_settings(SEED_PERMUTED_MNIST, QUICK_PERMUTED_MNIST),
    "split_mnist_class": seed_settings(SEED_SPLIT_MNIST, QUICK_SPLIT_MNIST),
    "split_mnist_task": seed_settings(SEED_SPLIT_MNIST, QUICK_SPLIT_MNIST),
}
SPARSE_MLP, DENSE_MLP = _register_pair(
    "mlp", "MLP", {**_SPARSE_DEFAULTS, "cnn": False}, _MLP_BENCHES, tuple(_MLP_BENCHES),
)
SPARSE_CNN, DENSE_CNN = _register_pair(
    "cnn", "CNN", {**_SPARSE_DEFAULTS, "cnn": True},
    {"split_cifar10_class": seed_settings(SEED_SPLIT_CIFAR10, QUICK_CNN)}, ("split_cifar10_class",),
)
