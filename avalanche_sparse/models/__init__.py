"""Avalanche-ready models of avalanche-sparse."""
from .mlp import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN
from .sparse import MultiHeadSparseCNN, MultiHeadSparseMLP, SparseCNN, SparseMLP

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN",
           "SparseMLP", "MultiHeadSparseMLP", "SparseCNN", "MultiHeadSparseCNN"]
