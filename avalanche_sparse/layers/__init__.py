"""layers of avalanche-sparse."""

from .kwinners import KWinners, KWinners2d, KWinnersBase, binary_entropy, kwinners, kwinners2d, max_entropy
from .sparse_weights import SparseWeights, SparseWeights2d, SparseWeightsBase, normalize_sparse_weights
from .utils import rezero_weights, update_boost_strength
from .topk import GABASwitchTopK, gaba_response, linear_k_schedule

__all__: list[str] = [
    "kwinners",
    "kwinners2d",
    "KWinnersBase",
    "KWinners",
    "KWinners2d",
    "binary_entropy",
    "max_entropy",
    "SparseWeightsBase",
    "SparseWeights",
    "SparseWeights2d",
    "normalize_sparse_weights",
    "rezero_weights",
    "update_boost_strength",
    "GABASwitchTopK",
    "gaba_response",
    "linear_k_schedule",
]
from .dendrites import (  # noqa: E402
    GATES,
    DendriteSegments,
    DendriticLayer,
    DendriticOutput,
    apply_dendrites,
    dendritic_absolute_max_gate,
    dendritic_bias,
    dendritic_max_gate,
    modified_kaiming_uniform_,
    winning_segments,
)

__all__ += [
    "GATES",
    "DendriteSegments",
    "DendriticLayer",
    "DendriticOutput",
    "apply_dendrites",
    "dendritic_absolute_max_gate",
    "dendritic_bias",
    "dendritic_max_gate",
    "modified_kaiming_uniform_",
    "winning_segments",
]
