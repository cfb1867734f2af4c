"""Avalanche-ready models of avalanche-sparse."""
from .mlp import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN"]
