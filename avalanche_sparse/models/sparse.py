r"""Sparse networks of the "sparse dynamic synapses" seed and their dense twins.

Sparse MLPs and CNNs in which every hidden layer has fixed sparse weights
(:class:`~avalanche_sparse.layers.SparseWeights`) and k-winners-take-all
activations (:class:`~avalanche_sparse.layers.KWinners`), after Ahmad &
Scheinkman 2019, "How Can We Be So Dense? The Benefits of Using Highly Sparse
Representations" (arXiv:1903.11257), as used for continual learning in the
Pervasive-AI-Lab "sparse-dynamic-synapses" experiments (Lomonaco, 2019). With
``sparsify=False`` the same constructor gives the *dense twin*: the same
layer sizes, dropout and classifier with ``ReLU`` instead of k-WTA and full
weight matrices, so a table compares like with like.

Wiring (one hidden block of each model):

* MLP, sparse: ``SparseWeights(Linear) -> KWinners -> Dropout`` (no ReLU: the
  k-WTA is the non-linearity); dense: ``Linear -> ReLU -> Dropout``.
* CNN, sparse: for each conv ``SparseWeights2d(Conv2d 5x5) -> ReLU ->
  KWinners2d(local=True) -> Dropout`` (the k winners are chosen among the
  channels at every location), then ``Flatten -> SparseWeights(Linear) -> ReLU
  -> KWinners -> Dropout``; dense: the same with the k-WTA layers removed and
  full weights. Convolutions use no padding and no pooling (as the seed), so a
  32x32 input gives 24x24 maps after two 5x5 convs.
* The classifier is always a dense ``Linear`` (one head, or an Avalanche
  ``MultiHeadClassifier`` in the multi-head variants).

.. note:: **Weight-sparsity convention.** The seed's parameters
   ``weight_sparsity_fc`` / ``weight_sparsity_conv`` are kept with the seed's
   meaning: the fraction of **NON-zero** weights (the *density*; the
   deprecated ``weight_sparsity`` argument of ``nupic.torch``'s
   ``SparseWeights``). ``weight_sparsity_fc=0.1`` keeps 10 % of each unit's
   inputs. The value must be in (0, 1]; 1.0 means dense weights (no
   ``SparseWeights`` wrapper at all). Internally the layers receive
   ``sparsity = 1 - density`` (the fraction of zeros).

Every model exposes ``features`` (the trunk) and ``classifier`` (the head),
plus :meth:`rezero_weights` and :meth:`update_boost_strength` (no-ops for the
dense twin), which :class:`avalanche_sparse.strategies.SparseNetworkPlugin`
calls after every optimizer step and at the end of every epoch.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import Tensor, nn

from avalanche_sparse.layers import KWinners, KWinners2d, SparseWeights, SparseWeights2d
from avalanche_sparse.layers import rezero_weights as _rezero_all
from avalanche_sparse.layers import update_boost_strength as _update_boost_all

__all__ = [
    "SparseMLP",
    "MultiHeadSparseMLP",
    "SparseCNN",
    "MultiHeadSparseCNN",
    "sparse_mlp_trunk",
    "sparse_cnn_trunk",
]


# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------
def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _int_at_least(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return value


def _fraction(value: object, name: str, *, what: str) -> float:
    v = _real(value, name)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} ({what}) must be in (0, 1], got {v}")
    return v


def _check_common(
    dropout: float, k_inference_factor: float, boost_strength: float,
    boost_strength_factor: float, duty_cycle_period: int,
) -> None:
    d = _real(dropout, "dropout")
    if not 0.0 <= d < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {d}")
    if _real(k_inference_factor, "k_inference_factor") <= 0.0:
        raise ValueError(f"k_inference_factor must be > 0, got {k_inference_factor}")
    if _real(boost_strength, "boost_strength") < 0.0:
        raise ValueError(f"boost_strength must be >= 0, got {boost_strength}")
    f = _real(boost_strength_factor, "boost_strength_factor")
    if not 0.0 < f <= 1.0:
        raise ValueError(f"boost_strength_factor must be in (0, 1], got {f}")
    _int_at_least(duty_cycle_period, "duty_cycle_period", 1)


def _mask_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else int(seed) * 1000 + index


def _sparse_linear(n_in: int, n_out: int, density: float, seed: int | None) -> nn.Module:
    linear = nn.Linear(n_in, n_out)
    if density >= 1.0:
        return linear
    try:
        return SparseWeights(linear, 1.0 - density, seed=seed)
    except ValueError as err:
        raise ValueError(
            f"weight_sparsity_fc={density} (fraction of NON-zero weights) keeps no input of the "
            f"{n_in} of a layer; it must be >= {0.5 / n_in:.3g} here ({err})"
        ) from None


def _sparse_conv(c_in: int, c_out: int, kernel: int, density: float, seed: int | None) -> nn.Module:
    conv = nn.Conv2d(c_in, c_out, kernel_size=kernel, stride=1, padding=0)
    if density >= 1.0:
        return conv
    fan_in = c_in * kernel * kernel
    try:
        return SparseWeights2d(conv, 1.0 - density, seed=seed)
    except ValueError:
        raise ValueError(
            f"weight_sparsity_conv={density} (fraction of NON-zero weights) keeps no input of the "
            f"{fan_in} of a kernel; it must be >= {0.5 / fan_in:.3g} here"
        ) from None


# ----------------------------------------------------------------------------
# trunks
# ----------------------------------------------------------------------------
def sparse_mlp_trunk(
    input_size: int,
    *,
    hidden_units: int,
    hidden_layers: int,
    dropout: float,
    sparsify: bool,
    percent_on_fc: float,
    weight_sparsity_fc: float,
    k_inference_factor: float,
    boost_strength: float,
    boost_strength_factor: float,
    duty_cycle_period: int,
    seed: int | None = None,
) -> nn.Sequential:
    """``Flatten`` and ``hidden_layers`` blocks of ``hidden_units`` units (see
    the module docstring for the wiring). ``seed`` seeds the weight masks."""
    _int_at_least(input_size, "input_size", 1)
    _int_at_least(hidden_units, "hidden_units", 1)
    _int_at_least(hidden_layers, "hidden_layers", 1)
    _check_common(dropout, k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period)
    percent_on_fc = _fraction(percent_on_fc, "percent_on_fc", what="fraction of active units")
    density = _fraction(weight_sparsity_fc, "weight_sparsity_fc", what="fraction of NON-zero weights")
    if sparsify and int(round(hidden_units * percent_on_fc)) < 1:
        raise ValueError(
            f"percent_on_fc={percent_on_fc} gives k = round({hidden_units} * {percent_on_fc}) = 0 active "
            f"units; percent_on_fc must be >= {0.5 / hidden_units:.3g} for hidden_units={hidden_units}"
        )
    layers: list[nn.Module] = [nn.Flatten()]
    prev = input_size
    for i in range(hidden_layers):
        if sparsify:
            layers.append(_sparse_linear(prev, hidden_units, density, _mask_seed(seed, i)))
            layers.append(KWinners(
                hidden_units, percent_on_fc, k_inference_factor=k_inference_factor,
                boost_strength=boost_strength, boost_strength_factor=boost_strength_factor,
                duty_cycle_period=duty_cycle_period,
            ))
        else:
            layers += [nn.Linear(prev, hidden_units), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = hidden_units
    return nn.Sequential(*layers)


def sparse_cnn_trunk(
    in_channels: int,
    *,
    image_size: int,
    channels: Sequence[int],
    kernel_size: int,
    hidden_units: int,
    dropout: float,
    sparsify: bool,
    percent_on_conv: float,
    percent_on_fc: float,
    weight_sparsity_conv: float,
    weight_sparsity_fc: float,
    k_inference_factor: float,
    boost_strength: float,
    boost_strength_factor: float,
    duty_cycle_period: int,
    seed: int | None = None,
) -> nn.Sequential:
    """Conv blocks (one per entry of ``channels``), ``Flatten`` and one
    fully-connected block of ``hidden_units`` (see the module docstring)."""
    _int_at_least(in_channels, "in_channels", 1)
    _int_at_least(image_size, "image_size", 1)
    _int_at_least(kernel_size, "kernel_size", 1)
    _int_at_least(hidden_units, "hidden_units", 1)
    chans = list(channels) if isinstance(channels, (list, tuple)) else None
    if not chans or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in chans):
        raise ValueError(f"channels must be a non-empty sequence of ints >= 1, got {channels!r}")
    _check_common(dropout, k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period)
    percent_on_conv = _fraction(percent_on_conv, "percent_on_conv", what="fraction of active channels")
    percent_on_fc = _fraction(percent_on_fc, "percent_on_fc", what="fraction of active units")
    density_conv = _fraction(weight_sparsity_conv, "weight_sparsity_conv",
                             what="fraction of NON-zero weights")
    density_fc = _fraction(weight_sparsity_fc, "weight_sparsity_fc", what="fraction of NON-zero weights")
    size = image_size - len(chans) * (kernel_size - 1)
    if size < 1:
        raise ValueError(
            f"image_size={image_size} is too small for {len(chans)} unpadded {kernel_size}x{kernel_size} "
            f"convolutions; it must be >= {len(chans) * (kernel_size - 1) + 1}"
        )
    if sparsify:
        for c in chans:
            if int(round(c * percent_on_conv)) < 1:
                raise ValueError(
                    f"percent_on_conv={percent_on_conv} gives k = round({c} * {percent_on_conv}) = 0 "
                    f"active channels; percent_on_conv must be >= {0.5 / c:.3g} for {c} channels"
                )
        if int(round(hidden_units * percent_on_fc)) < 1:
            raise ValueError(
                f"percent_on_fc={percent_on_fc} gives k = round({hidden_units} * {percent_on_fc}) = 0 "
                f"active units; percent_on_fc must be >= {0.5 / hidden_units:.3g}"
            )
    kw = dict(k_inference_factor=k_inference_factor, boost_strength=boost_strength,
              boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period)
    layers: list[nn.Module] = []
    prev = in_channels
    for i, c in enumerate(chans):
        if sparsify:
            layers += [_sparse_conv(prev, c, kernel_size, density_conv, _mask_seed(seed, i)), nn.ReLU(),
                       KWinners2d(c, percent_on_conv, local=True, **kw)]
        else:
            layers += [nn.Conv2d(prev, c, kernel_size=kernel_size, stride=1, padding=0), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        prev = c
    layers.append(nn.Flatten())
    n_flat = prev * size * size
    if sparsify:
        layers += [_sparse_linear(n_flat, hidden_units, density_fc, _mask_seed(seed, len(chans))),
                   nn.ReLU(), KWinners(hidden_units, percent_on_fc, **kw)]
    else:
        layers += [nn.Linear(n_flat, hidden_units), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------
class _SparseMixin:
    """``rezero_weights`` / ``update_boost_strength`` over all sub-modules."""

    def rezero_weights(self) -> None:
        """Zero the pruned weights of every sparse layer (after each optimizer step)."""
        _rezero_all(self)  # type: ignore[arg-type]

    def update_boost_strength(self) -> None:
        """Decay the boost strength of every k-WTA layer (once per epoch)."""
        _update_boost_all(self)  # type: ignore[arg-type]


def _check_shape(x: Tensor, expected: tuple[int, ...], name: str) -> None:
    if x.dim() < 2 or tuple(x.shape[1:]) != expected and not (
        len(expected) == 1 and math.prod(x.shape[1:]) == expected[0]
    ):
        raise ValueError(f"{name} expects inputs of shape (batch, {', '.join(map(str, expected))}); "
                         f"got {tuple(x.shape)}")


class SparseMLP(_SparseMixin, nn.Module):
    """Sparse multilayer perceptron with a single head (or its dense twin).

    :param input_size: number of input features (images are flattened), ``>= 1``.
    :param n_classes: number of output units, ``>= 1``.
    :param hidden_units: width of every hidden layer, ``>= 1``.
    :param hidden_layers: number of hidden layers, ``>= 1``.
    :param dropout: dropout probability after every hidden layer, in [0, 1).
    :param sparsify: ``True``: sparse weights + k-WTA; ``False``: the dense twin
        (``Linear -> ReLU -> Dropout``; the sparsity arguments are then only
        validated).
    :param percent_on_fc: fraction of active (winning) units per hidden layer,
        in (0, 1]; ``k = round(hidden_units * percent_on_fc)`` must be >= 1.
    :param weight_sparsity_fc: fraction of **NON-zero** weights of each hidden
        layer (the seed's meaning, i.e. the density), in (0, 1]; 1 = dense.
    :param k_inference_factor: evaluation uses ``int(k * factor)`` winners (> 0).
    :param boost_strength: boost strength ``>= 0`` (0: no boosting).
    :param boost_strength_factor: per-epoch decay of the boost strength, (0, 1].
    :param duty_cycle_period: duty-cycle averaging period in samples, ``>= 1``.
    :param seed: seed of the fixed weight masks (``None``: torch's global RNG).
    """

    def __init__(
        self,
        input_size: int = 784,
        n_classes: int = 10,
        *,
        hidden_units: int = 2048,
        hidden_layers: int = 1,
        dropout: float = 0.5,
        sparsify: bool = True,
        percent_on_fc: float = 0.1,
        weight_sparsity_fc: float = 0.1,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _int_at_least(n_classes, "n_classes", 1)
        self.input_size = input_size
        self.sparsify = bool(sparsify)
        self.features = sparse_mlp_trunk(
            input_size, hidden_units=hidden_units, hidden_layers=hidden_layers, dropout=dropout,
            sparsify=sparsify, percent_on_fc=percent_on_fc, weight_sparsity_fc=weight_sparsity_fc,
            k_inference_factor=k_inference_factor, boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period, seed=seed,
        )
        self.classifier = nn.Linear(hidden_units, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        _check_shape(x, (self.input_size,), type(self).__name__)
        return self.classifier(self.features(x))


class MultiHeadSparseMLP(_SparseMixin, MultiTaskModule):
    """:class:`SparseMLP` with one head per task (task-incremental learning).

    An Avalanche ``MultiTaskModule`` whose ``classifier`` is a
    ``MultiHeadClassifier``: Avalanche adds a head when a new task label
    appears and ``forward(x, task_labels)`` routes each sample to its head.
    Arguments as :class:`SparseMLP`.
    """

    def __init__(self, input_size: int = 784, n_classes: int = 10, *, hidden_units: int = 2048,
                 hidden_layers: int = 1, dropout: float = 0.5, sparsify: bool = True,
                 percent_on_fc: float = 0.1, weight_sparsity_fc: float = 0.1,
                 k_inference_factor: float = 1.5, boost_strength: float = 1.0,
                 boost_strength_factor: float = 0.9, duty_cycle_period: int = 1000,
                 seed: int | None = None) -> None:
        super().__init__()
        _int_at_least(n_classes, "n_classes", 1)
        self.input_size = input_size
        self.sparsify = bool(sparsify)
        self.features = sparse_mlp_trunk(
            input_size, hidden_units=hidden_units, hidden_layers=hidden_layers, dropout=dropout,
            sparsify=sparsify, percent_on_fc=percent_on_fc, weight_sparsity_fc=weight_sparsity_fc,
            k_inference_factor=k_inference_factor, boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period, seed=seed,
        )
        self.classifier = MultiHeadClassifier(hidden_units, initial_out_features=n_classes)
        self.max_class_label = max(self.max_class_label, n_classes)  # width of the mixed-task output

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        _check_shape(x, (self.input_size,), type(self).__name__)
        return self.classifier(self.features(x), task_label)


class SparseCNN(_SparseMixin, nn.Module):
    """Sparse CNN (or its dense twin) with a single head.

    :param in_channels: channels of the input images, ``>= 1``.
    :param n_classes: number of output units.
    :param image_size: height = width of the input images.
    :param channels: output channels of each unpadded conv (default: the
        seed's ``(64, 128)``); one conv block per entry.
    :param kernel_size: conv kernel size (5 in the seed).
    :param hidden_units: width of the fully-connected hidden layer.
    :param dropout: dropout after every block, in [0, 1).
    :param sparsify: ``False`` gives the dense twin.
    :param percent_on_conv: fraction of channels that win at each location.
    :param percent_on_fc: fraction of active units of the FC layer.
    :param weight_sparsity_conv: fraction of **NON-zero** kernel weights per
        output channel, in (0, 1] (1 = dense kernels).
    :param weight_sparsity_fc: fraction of **NON-zero** weights of the FC layer.
    :param k_inference_factor, boost_strength, boost_strength_factor,
        duty_cycle_period, seed: as :class:`SparseMLP`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 10,
        *,
        image_size: int = 32,
        channels: Sequence[int] = (64, 128),
        kernel_size: int = 5,
        hidden_units: int = 512,
        dropout: float = 0.5,
        sparsify: bool = True,
        percent_on_conv: float = 0.1,
        percent_on_fc: float = 0.1,
        weight_sparsity_conv: float = 1.0,
        weight_sparsity_fc: float = 0.1,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _int_at_least(n_classes, "n_classes", 1)
        self.input_shape = (in_channels, image_size, image_size)
        self.sparsify = bool(sparsify)
        self.features = sparse_cnn_trunk(
            in_channels, image_size=image_size, channels=channels, kernel_size=kernel_size,
            hidden_units=hidden_units, dropout=dropout, sparsify=sparsify,
            percent_on_conv=percent_on_conv, percent_on_fc=percent_on_fc,
            weight_sparsity_conv=weight_sparsity_conv, weight_sparsity_fc=weight_sparsity_fc,
            k_inference_factor=k_inference_factor, boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period, seed=seed,
        )
        self.classifier = nn.Linear(hidden_units, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        _check_shape(x, self.input_shape, type(self).__name__)
        return self.classifier(self.features(x))


class MultiHeadSparseCNN(_SparseMixin, MultiTaskModule):
    """:class:`SparseCNN` with one head per task (an Avalanche
    ``MultiTaskModule`` with a ``MultiHeadClassifier``). Arguments as
    :class:`SparseCNN`."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, *, image_size: int = 32,
                 channels: Sequence[int] = (64, 128), kernel_size: int = 5, hidden_units: int = 512,
                 dropout: float = 0.5, sparsify: bool = True, percent_on_conv: float = 0.1,
                 percent_on_fc: float = 0.1, weight_sparsity_conv: float = 1.0,
                 weight_sparsity_fc: float = 0.1, k_inference_factor: float = 1.5,
                 boost_strength: float = 1.0, boost_strength_factor: float = 0.9,
                 duty_cycle_period: int = 1000, seed: int | None = None) -> None:
        super().__init__()
        _int_at_least(n_classes, "n_classes", 1)
        self.input_shape = (in_channels, image_size, image_size)
        self.sparsify = bool(sparsify)
        self.features = sparse_cnn_trunk(
            in_channels, image_size=image_size, channels=channels, kernel_size=kernel_size,
            hidden_units=hidden_units, dropout=dropout, sparsify=sparsify,
            percent_on_conv=percent_on_conv, percent_on_fc=percent_on_fc,
            weight_sparsity_conv=weight_sparsity_conv, weight_sparsity_fc=weight_sparsity_fc,
            k_inference_factor=k_inference_factor, boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period, seed=seed,
        )
        self.classifier = MultiHeadClassifier(hidden_units, initial_out_features=n_classes)
        self.max_class_label = max(self.max_class_label, n_classes)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        _check_shape(x, self.input_shape, type(self).__name__)
        return self.classifier(self.features(x), task_label)
