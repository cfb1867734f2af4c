"""Avalanche-ready models of avalanche-sparse."""
from .mlp import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN
from .sdm import SDMLP, StaleMomentumWarning, TopKMLP, stale_momentum_optimizer, warn_stale_momentum

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN",
           "SDMLP", "TopKMLP", "StaleMomentumWarning", "stale_momentum_optimizer", "warn_stale_momentum"]
