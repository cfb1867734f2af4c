"""metrics of avalanche-sparse."""
from .sparsity import ActivationDensity, DeadUnits, DutyCycleHistogram, WeightDensity, sparsity_metrics

__all__: list[str] = [
    "ActivationDensity",
    "DutyCycleHistogram",
    "DeadUnits",
    "WeightDensity",
    "sparsity_metrics",
]
