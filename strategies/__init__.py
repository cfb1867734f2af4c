"""Avalanche plugins of avalanche-sparse and the method registry.

Installed as :mod:`avalanche_sparse.strategies` (``setup.py`` maps the
top-level ``strategies/`` folder here). Importing this package registers the
built-in methods.
"""
from . import baselines  # noqa: F401  (registers naive, ewc, si, joint)
from . import complex_synapses  # noqa: F401  (registers complex_synapse, _plain, _sgd)
from .iterations import IterationBudgetPlugin
from .progress import EpochProgressPlugin
from .sparse import SparseNetworkPlugin  # registers sparse_mlp, dense_mlp, sparse_cnn, dense_cnn
from . import sdm  # noqa: F401  (registers sdmlp, topk, sdmlp_ewc, sdmlp_sgdm, sdmlp_adam)
from .sdm import SDMPlugin
from .dendrites import (  # noqa: E402
    OptimizerResetPlugin,
    PrototypeContextPlugin,
    RezeroAfterStepPlugin,
    SafeSynapticIntelligencePlugin,
)
from .dendrite_analysis import DendriteAnalysisPlugin  # noqa: E402
from .growth import SynapseGrowthPlugin  # after .sparse: registers sparse_growth on sparse_mlp
from .fast_loader import FastTensorLoaderPlugin
from .registry import (
    REGISTRY,
    Method,
    MethodContext,
    available_methods,
    build_strategy,
    default_model,
    default_optimizer,
    torch_optimizer,
    get_method,
    register,
    resolve_hparams,
)

__all__ = [
    "REGISTRY",
    "Method",
    "MethodContext",
    "available_methods",
    "build_strategy",
    "default_model",
    "default_optimizer",
    "torch_optimizer",
    "get_method",
    "register",
    "resolve_hparams",
    "EpochProgressPlugin",
    "SDMPlugin",
    "SynapseGrowthPlugin",
    "SparseNetworkPlugin",
    "FastTensorLoaderPlugin",
    "IterationBudgetPlugin",
]
__all__ += ["PrototypeContextPlugin", "OptimizerResetPlugin", "RezeroAfterStepPlugin",
            "SafeSynapticIntelligencePlugin", "DendriteAnalysisPlugin"]
