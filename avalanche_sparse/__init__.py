"""avalanche-sparse: brain-inspired continual-learning methods for Avalanche.

Sub-packages:

* :mod:`avalanche_sparse.layers` -- torch layers (k-WTA, sparse weights, ...)
* :mod:`avalanche_sparse.models` -- Avalanche-ready models
* :mod:`avalanche_sparse.optim` -- optimizers
* :mod:`avalanche_sparse.metrics` -- Avalanche plugin metrics
* :mod:`avalanche_sparse.strategies` -- Avalanche plugins and the method registry
* :mod:`avalanche_sparse.benchmarks` -- offline data staging and fast scenarios
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
