"""Avalanche-ready models of avalanche-sparse."""
from .mlp import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN
from .dendritic import CONTEXT_MODES, DendriticMLP, modified_init_mlp

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN"]
__all__ += ["CONTEXT_MODES", "DendriticMLP", "modified_init_mlp"]
