"""Avalanche-ready models of avalanche-sparse."""
from .dendritic import CONTEXT_MODES, DendriticMLP, modified_init_mlp
from .mlp import MLP, MultiHeadMLP, MultiHeadSmallCNN, SmallCNN
from .sdm import SDMLP, StaleMomentumWarning, TopKMLP, stale_momentum_optimizer, warn_stale_momentum
from .sparse import MultiHeadSparseCNN, MultiHeadSparseMLP, SparseCNN, SparseMLP

__all__ = ["MLP", "MultiHeadMLP", "SmallCNN", "MultiHeadSmallCNN"]
__all__ += ["SparseMLP", "MultiHeadSparseMLP", "SparseCNN", "MultiHeadSparseCNN"]
__all__ += ["SDMLP", "TopKMLP", "StaleMomentumWarning", "stale_momentum_optimizer", "warn_stale_momentum"]
__all__ += ["CONTEXT_MODES", "DendriticMLP", "modified_init_mlp"]
