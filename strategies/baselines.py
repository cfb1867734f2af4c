"""Baseline rows of Table 1: ``naive``, ``ewc``, ``si`` and ``joint``.

All four use Avalanche's stock strategies unchanged, with the settings of
Avalanche's own reproductions (continual-learning-baselines) where they
exist:

* ``naive`` -- fine-tuning, ``avalanche.training.Naive``.
* ``ewc`` -- Elastic Weight Consolidation, ``avalanche.training.EWC``
  (Kirkpatrick et al. 2017, PNAS 114(13)).
* ``si`` -- Synaptic Intelligence, ``avalanche.training.SynapticIntelligence``
  (Zenke, Poole & Ganguli 2017, ICML).
* ``si_fixed`` -- the same SI with the avalanche-lib 0.6.0 CPU bug worked
  around (:class:`~avalanche_sparse.strategies.SafeSynapticIntelligencePlugin`:
  the stock plugin snapshots weights with ``param.detach().cpu()``, a *view*
  on CPU, so its importance and penalty stay exactly 0 and ``si`` is plain
  fine-tuning on CPU); same lambda, eps and importance clamp (0.001) as stock.
* ``joint`` -- the cumulative upper bound (the seed's ``cumul``):
  ``avalanche.training.Cumulative`` retrains on all data seen so far.
"""
from __future__ import annotations

from .registry import Method, default_model, default_optimizer, register

__all__ = ["NAIVE", "EWC_METHOD", "SI_METHOD", "SI_FIXED", "JOINT"]

NAIVE = register(Method(
    name="naive",
    description="fine-tuning with Avalanche's Naive strategy (lower bound)",
    model=default_model,
    optimizer=default_optimizer,
    strategy="avalanche.training.Naive",
))

EWC_METHOD = register(Method(
    name="ewc",
    description="Elastic Weight Consolidation (Avalanche EWC, separate penalties)",
    model=default_model,
    optimizer=default_optimizer,
    strategy="avalanche.training.EWC",
    strategy_kwargs=lambda ctx: {"ewc_lambda": float(ctx.hparams["ewc_lambda"]), "mode": "separate"},
    hparams={"ewc_lambda": 10.0},
    # Permuted MNIST: exactly continual-learning-baselines' ewc_pmnist
    # (MLP 1x512, plain SGD lr 1e-3, batch 256, lambda 1), whose 0.83 we compare to.
    hparams_by_benchmark={"permuted_mnist": {"ewc_lambda": 1.0, "optimizer": "sgd", "lr": 1e-3,
                                             "hidden_sizes": [512]}},
))

SI_METHOD = register(Method(
    name="si",
    description="Synaptic Intelligence (Avalanche SynapticIntelligence)",
    model=default_model,
    optimizer=default_optimizer,
    strategy="avalanche.training.SynapticIntelligence",
    strategy_kwargs=lambda ctx: {"si_lambda": float(ctx.hparams["si_lambda"]),
                                 "eps": float(ctx.hparams["si_eps"])},
    hparams={"si_lambda": 1.0, "si_eps": 0.1},
    hparams_by_benchmark={"permuted_mnist": {"si_lambda": 10.0}},
))

def _si_fixed_plugins(ctx) -> list:
    from .dendrites import SafeSynapticIntelligencePlugin

    return [SafeSynapticIntelligencePlugin(float(ctx.hparams["si_lambda"]), eps=float(ctx.hparams["si_eps"]),
                                           clip_to=0.001)]


SI_FIXED = register(Method(
    name="si_fixed",
    description="Synaptic Intelligence with Avalanche 0.6's CPU snapshot bug worked around (Naive + SafeSI plugin)",
    model=default_model,
    optimizer=default_optimizer,
    strategy="avalanche.training.Naive",
    plugins=_si_fixed_plugins,
    hparams=dict(SI_METHOD.hparams),  # the stock row's settings, so the two cannot drift apart
    hparams_by_benchmark=dict(SI_METHOD.hparams_by_benchmark),
))

JOINT = register(Method(
    name="joint",
    description="cumulative upper bound: retrain on all data so far (Avalanche Cumulative)",
    model=default_model,
    optimizer=default_optimizer,
    strategy="avalanche.training.Cumulative",
))
