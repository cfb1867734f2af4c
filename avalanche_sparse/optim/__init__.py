"""Optimizers of avalanche-sparse: complex synapses (Benna & Fusi, 2016)."""

from .complex_synapse import BeakerChain, ComplexSynapseAdam, ComplexSynapseSGD, beaker_chain

__all__: list[str] = [
    "BeakerChain",
    "beaker_chain",
    "ComplexSynapseSGD",
    "ComplexSynapseAdam",
]
