"""metrics of avalanche-sparse."""
from .dead_neurons import DeadNeuronFraction, dead_neuron_metrics, default_topk_layer_types
from .publish import MetricsPlugin
from .sparsity import ActivationDensity, DeadUnits, DutyCycleHistogram, WeightDensity, sparsity_metrics

__all__: list[str] = [
    "DeadNeuronFraction",
    "dead_neuron_metrics",
    "default_topk_layer_types",
    "MetricsPlugin",
    "ActivationDensity",
    "DutyCycleHistogram",
    "DeadUnits",
    "WeightDensity",
    "sparsity_metrics",
]
