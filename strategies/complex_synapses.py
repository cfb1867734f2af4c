"""Complex-synapse rows of Table 1 (Benna & Fusi 2016; van de Ven's comparison).

The optimizers live in :mod:`avalanche_sparse.optim.complex_synapse`; a row
is an ordinary Avalanche ``Naive`` strategy whose optimizer is a complex
synapse, so nothing here is specific to the strategy (any Avalanche strategy
takes the optimizer).

* ``complex_synapse`` -- :class:`~avalanche_sparse.optim.ComplexSynapseAdam`
  with ``n_beakers=5``, ``alpha=500``, ``beta=2500`` and the reference time
  step (``timescale="reference"``: the step size is Adam's bias-corrected
  learning rate, so alpha and beta are in lr x iterations, as in the
  reference code).
* ``complex_synapse_plain`` -- its twin: the same network, protocol and seed
  with :class:`torch.optim.Adam` (the reference's "standard" row).
* ``complex_synapse_sgd`` -- a combination entry:
  :class:`~avalanche_sparse.optim.ComplexSynapseSGD` (5 beakers, SGD lr 0.1)
  on the dense network, with timescales in true iterations
  (``timescale="iterations"``, alpha 500 and beta 2500 iterations), so that
  the beakers act within the 500-iteration tasks.

On ``split_mnist_task`` all three follow the reference protocol of
``compare.py`` in GMvandeVen/complex-synapses (DESIGN.md section 8):
multi-head MLP 784-400-400, batch 128, Adam lr 1e-3 (SGD rows: lr 0.1),
500 iterations per task (``train_iterations``, honoured by
:class:`~avalanche_sparse.strategies.iterations.IterationBudgetPlugin`),
whatever the preset's epochs and network. On ``permuted_mnist`` they use
the preset's protocol (network, epochs, batch) so that they sit beside the
other rows; only the optimizer differs.

Known differences from the reference run: the reference's multi-head network
is one 10-unit output layer masked to the current task's two units (heads
of inactive tasks get zero gradients, and Adam / the beakers keep moving
them), ours is Avalanche's ``MultiHeadClassifier`` (one head per task;
inactive heads get no gradient and are left untouched by the optimizer). The
reference draws every batch at random; we shuffle once per epoch.

References: M. K. Benna and S. Fusi (2016), Nature Neuroscience 19,
1697-1706; G. M. van de Ven, https://github.com/GMvandeVen/complex-synapses.
"""
from __future__ import annotations

from torch import nn

from avalanche_sparse.optim import ComplexSynapseAdam, ComplexSynapseSGD

from .registry import Method, MethodContext, default_model, default_optimizer, register

__all__ = [
    "REFERENCE_PROTOCOL",
    "complex_synapse_adam",
    "complex_synapse_sgd",
    "COMPLEX_SYNAPSE",
    "COMPLEX_SYNAPSE_PLAIN",
    "COMPLEX_SYNAPSE_SGD",
]

#: van de Ven's compare.py on Split MNIST task-IL (overrides the preset)
REFERENCE_PROTOCOL = {"hidden_sizes": [400, 400], "train_mb_size": 128, "optimizer": "adam",
                      "lr": 1e-3, "train_iterations": 500}

_CHAIN = {"n_beakers": 5, "alpha": 500.0, "beta": 2500.0}
_BENCHMARKS = ("split_mnist_task", "permuted_mnist")


def complex_synapse_adam(model: nn.Module, ctx: MethodContext) -> ComplexSynapseAdam:
    """:class:`ComplexSynapseAdam` from the hparams ``lr``, ``weight_decay``,
    ``n_beakers``, ``alpha``, ``beta`` and ``cs_timescale``."""
    hp = ctx.hparams
    return ComplexSynapseAdam(
        model.parameters(), lr=float(hp["lr"]), weight_decay=float(hp.get("weight_decay", 0.0)),
        n_beakers=int(hp["n_beakers"]), alpha=float(hp["alpha"]), beta=float(hp["beta"]),
        timescale=hp.get("cs_timescale", "reference"),
    )


def complex_synapse_sgd(model: nn.Module, ctx: MethodContext) -> ComplexSynapseSGD:
    """:class:`ComplexSynapseSGD` from the hparams ``lr``, ``momentum``,
    ``weight_decay``, ``n_beakers``, ``alpha``, ``beta`` and ``cs_timescale``."""
    hp = ctx.hparams
    return ComplexSynapseSGD(
        model.parameters(), lr=float(hp["lr"]), momentum=float(hp.get("momentum", 0.0)),
        weight_decay=float(hp.get("weight_decay", 0.0)),
        n_beakers=int(hp["n_beakers"]), alpha=float(hp["alpha"]), beta=float(hp["beta"]),
        timescale=hp.get("cs_timescale", "reference"),
    )


COMPLEX_SYNAPSE = register(Method(
    name="complex_synapse",
    description="complex synapses (Benna & Fusi 2016): Adam with 5 beakers, alpha 500, beta 2500",
    model=default_model,
    optimizer=complex_synapse_adam,
    hparams={**_CHAIN, "cs_timescale": "reference"},
    hparams_by_benchmark={"split_mnist_task": dict(REFERENCE_PROTOCOL)},
    benchmarks=_BENCHMARKS,
))

COMPLEX_SYNAPSE_PLAIN = register(Method(
    name="complex_synapse_plain",
    description="twin of complex_synapse: same network and protocol, torch.optim.Adam",
    model=default_model,
    optimizer=default_optimizer,
    hparams_by_benchmark={"split_mnist_task": dict(REFERENCE_PROTOCOL)},
    benchmarks=_BENCHMARKS,
))

COMPLEX_SYNAPSE_SGD = register(Method(
    name="complex_synapse_sgd",
    description="ComplexSynapseSGD (5 beakers, lr 0.1, alpha 500 / beta 2500 iterations) on the dense MLP",
    model=default_model,
    optimizer=complex_synapse_sgd,
    hparams={**_CHAIN, "cs_timescale": "iterations", "optimizer": "sgd", "lr": 0.1},
    hparams_by_benchmark={"split_mnist_task": {**REFERENCE_PROTOCOL, "optimizer": "sgd", "lr": 0.1}},
    benchmarks=_BENCHMARKS,
))


def _sparse_mlp_cs():
    """``sparse_mlp_cs``: the combination of two families in one row --
    ``sparse_mlp``'s network, settings and :class:`SparseNetworkPlugin`
    (SparseMLP of the seed, DESIGN.md section 5) trained with
    :class:`~avalanche_sparse.optim.ComplexSynapseSGD` (5 beakers, timescales
    alpha 500 / beta 2500 in iterations) instead of torch SGD; lr, momentum and
    weight decay are ``sparse_mlp``'s."""
    from .sparse import SPARSE_MLP

    return register(Method(
        name="sparse_mlp_cs",
        description="sparse_mlp trained with ComplexSynapseSGD (5 beakers, alpha 500 / beta 2500 iterations)",
        model=SPARSE_MLP.model,
        optimizer=complex_synapse_sgd,
        plugins=SPARSE_MLP.plugins,
        hparams={**SPARSE_MLP.hparams, **_CHAIN, "cs_timescale": "iterations"},
        hparams_by_benchmark=dict(SPARSE_MLP.hparams_by_benchmark),
        benchmarks=SPARSE_MLP.benchmarks,
    ))


SPARSE_MLP_CS = _sparse_mlp_cs()
__all__ += ["SPARSE_MLP_CS"]
