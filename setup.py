"""Installation script for avalanche-sparse.

The two top-level folders ``strategies/`` and ``benchmarks/`` are mapped into
the package namespace (``avalanche_sparse.strategies`` and
``avalanche_sparse.benchmarks``), so nothing generic lands in site-packages.
"""
from pathlib import Path

from setuptools import setup

PACKAGES = [
    "avalanche_sparse",
    "avalanche_sparse.layers",
    "avalanche_sparse.models",
    "avalanche_sparse.optim",
    "avalanche_sparse.metrics",
    "avalanche_sparse.strategies",
    "avalanche_sparse.benchmarks",
]

setup(
    name="avalanche-sparse",
    version="0.1.0",
    description=(
        "Brain-inspired continual learning (sparse networks, active dendrites, "
        "sparse distributed memory, complex synapses) for Avalanche"
    ),
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={
        "avalanche_sparse": "avalanche_sparse",
        "avalanche_sparse.strategies": "strategies",
        "avalanche_sparse.benchmarks": "benchmarks",
    },
    package_data={"avalanche_sparse.benchmarks": ["*.json"]},
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "avalanche-lib==0.6.0",
        "tensorboard",
        "tqdm",
        "matplotlib",
        "numpy",
        "pillow",
    ],
    extras_require={
        "test": ["pytest"],
        "ray": ["ray[default]==2.60.0"],
    },
)
