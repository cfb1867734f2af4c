"""metrics of avalanche-sparse."""

from .dead_neurons import DeadNeuronFraction, dead_neuron_metrics, default_topk_layer_types
from .publish import MetricsPlugin

__all__: list[str] = [
    "DeadNeuronFraction",
    "dead_neuron_metrics",
    "default_topk_layer_types",
    "MetricsPlugin",
]
