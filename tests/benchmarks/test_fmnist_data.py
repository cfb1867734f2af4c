"""Fashion-MNIST staging (:func:`stage_fmnist`) and loading, on synthetic IDX files.

Never the network and never the real Debian package: the Debian folder, the
shared data lookup and the torchvision download are replaced by the test.
"""
from __future__ import annotations

import gzip
import tarfile

import pytest
import torch

from avalanche_sparse.benchmarks import data as D
from tests.synthetic import MNIST_FILES, sha256_of, write_fake_mnist


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no real Debian package, no real shared data."""

    def no_network(*_a, **_k):
        raise AssertionError("a test reached the network")

    monkeypatch.setattr(D, "_fmnist_torchvision", no_network)
    monkeypatch.setattr(D, "_mnist_torchvision", no_network)
    monkeypatch.setattr(D, "_mnist_sdist", no_network)
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [])
    monkeypatch.setattr(D, "FMNIST_DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "env-root"))


@pytest.fixture
def debian(tmp_path, monkeypatch):
    """A fake ``/usr/share/datasets/fashion-mnist``: the four files gzipped; their sha256 table."""
    folder = tmp_path / "usr-share-datasets" / "fashion-mnist"
    sums = write_fake_mnist(folder, n_train=40, n_test=20, seed=5, gz=True)
    monkeypatch.setattr(D, "FMNIST_DEBIAN_DIR", folder)
    return folder, sums


def _leftovers(root):
    return [p for p in root.rglob("*") if ".staging-" in p.name or ".tmp-" in p.name]


def test_layout_is_what_avalanche_and_torchvision_read(tmp_path):
    from avalanche.benchmarks.datasets import default_dataset_location

    assert D.fmnist_raw_dir(tmp_path) == tmp_path / "fashionmnist" / "FashionMNIST" / "raw"
    assert D.fmnist_raw_dir() == tmp_path / "env-root" / "fashionmnist" / "FashionMNIST" / "raw"
    # <root>/<name> is Avalanche's default dataset_root of SplitFMNIST (as for MNIST)
    assert D.fmnist_raw_dir(tmp_path).parent.parent.name == default_dataset_location("fashionmnist").name
    assert D.mnist_raw_dir(tmp_path).parent.parent.name == default_dataset_location("mnist").name


def test_stage_from_debian_package_decompresses_and_verifies(tmp_path, debian):
    from torchvision.datasets import FashionMNIST

    folder, sums = debian
    raw = D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    assert raw == tmp_path / "root" / "fashionmnist" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == sums
    # content equals the gunzipped Debian file, byte for byte
    assert (raw / MNIST_FILES[0]).read_bytes() == gzip.decompress(
        (folder / f"{MNIST_FILES[0]}.gz").read_bytes())
    xtr, ytr, xte, yte = D.load_fmnist(tmp_path / "root")
    assert xtr.shape == (40, 28, 28) and xtr.dtype == torch.uint8 and ytr.dtype == torch.int64
    assert xte.shape == (20, 28, 28) and sorted(yte.unique().tolist()) == list(range(10))
    ds = FashionMNIST(root=str(tmp_path / "root" / "fashionmnist"), train=False, download=False)
    assert len(ds) == 20 and torch.equal(ds.targets, yte)
    assert not _leftovers(tmp_path / "root")


def test_default_checksums_are_the_real_ones(tmp_path, debian):
    # synthetic files are not the real Fashion-MNIST: the default table rejects them
    with pytest.raises(D.DataError) as err:
        D.stage_fmnist(tmp_path / "root", download=False, progress=False)
    msg = str(err.value)
    assert "Debian package dataset-fashion-mnist" in msg
    assert D.FMNIST_SHA256["train-images-idx3-ubyte"] in msg
    assert D.FMNIST_SHA256["train-images-idx3-ubyte"].startswith("c59f468a")
    assert not (tmp_path / "root" / "fashionmnist" / "FashionMNIST" / "raw").exists()


def test_already_staged_is_a_verified_noop(tmp_path, debian, monkeypatch):
    _, sums = debian
    D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    monkeypatch.setattr(D, "_install_files", lambda *a: pytest.fail("rewrote staged files"))
    monkeypatch.setattr(D, "FMNIST_DEBIAN_DIR", tmp_path / "gone")
    D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)


def test_named_source_comes_first_and_its_failure_is_raised(tmp_path, debian):
    _, sums = debian
    src = tmp_path / "mine"
    other = write_fake_mnist(src, n_train=30, n_test=10, seed=9)
    raw = D.stage_fmnist(tmp_path / "a", source=src, download=False, checksums=other,
                         progress=False)
    assert D.load_fmnist(tmp_path / "a")[0].shape[0] == 30  # not the Debian files (40)
    assert {n: sha256_of(raw / n) for n in MNIST_FILES} == other
    # the named source is wrong for the Debian sums: error at once, Debian not used
    with pytest.raises(D.ChecksumError, match=r"source .*mine: train-images-idx3-ubyte has sha256"):
        D.stage_fmnist(tmp_path / "b", source=src, download=False, checksums=sums, progress=False)
    assert not (tmp_path / "b" / "fashionmnist").exists()


def test_source_archive_and_alias_spellings(tmp_path):
    sums = write_fake_mnist(tmp_path / "src" / "data" / "fashion", n_train=20, n_test=10, seed=2,
                            gz=True)
    arc = tmp_path / "fashion.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(tmp_path / "src", arcname="fashion-mnist")
    D.stage_fmnist(tmp_path / "root", source=arc, download=False, checksums=sums, progress=False)
    assert D.load_fmnist(tmp_path / "root")[1].shape == (20,)


def test_truncated_gz_is_named_and_nothing_written(tmp_path, debian):
    folder, sums = debian
    src = tmp_path / "broken"
    src.mkdir()
    for name in MNIST_FILES:
        (src / f"{name}.gz").write_bytes((folder / f"{name}.gz").read_bytes())
    data = (src / "train-images-idx3-ubyte.gz").read_bytes()
    (src / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(D.DataError, match=r"train-images-idx3-ubyte.gz is unreadable"):
        D.stage_fmnist(tmp_path / "root", source=src, download=False, checksums=sums,
                       progress=False)
    assert not (tmp_path / "root" / "fashionmnist").exists() and not _leftovers(tmp_path)


def test_corrupt_staged_file_is_repaired_from_debian(tmp_path, debian):
    _, sums = debian
    raw = D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    assert sha256_of(raw / "t10k-labels-idx1-ubyte") == sums["t10k-labels-idx1-ubyte"]


def test_order_debian_then_shared_then_download(tmp_path, monkeypatch):
    sums = write_fake_mnist(tmp_path / "dl", n_train=20, n_test=10, seed=4, gz=True)
    calls = []

    def fake_download(scratch):
        calls.append("download")
        return tmp_path / "dl"

    monkeypatch.setattr(D, "_fmnist_torchvision", fake_download)
    shared = tmp_path / "shared"
    (shared / "fashion-mnist").mkdir(parents=True)  # empty: tried, fails, next
    monkeypatch.setattr(D, "_shared_data_dirs", lambda: [shared])
    bad_debian = tmp_path / "deb"
    write_fake_mnist(bad_debian, n_train=20, n_test=10, seed=99, gz=True)  # other content
    monkeypatch.setattr(D, "FMNIST_DEBIAN_DIR", bad_debian)
    msgs = []
    monkeypatch.setattr(D, "_say", lambda msg, progress: msgs.append(msg))
    D.stage_fmnist(tmp_path / "root", checksums=sums)
    tried = [m for m in msgs if "trying" in m]
    assert "Debian package" in tried[0] and "shared data" in tried[1]
    assert "torchvision download" in tried[2] and calls == ["download"]
    # with the download disabled, every attempt is listed, with the checksum failure
    with pytest.raises(D.DataError) as err:
        D.stage_fmnist(tmp_path / "other", checksums=sums, download=False)
    msg = str(err.value)
    assert "Debian package dataset-fashion-mnist" in msg and "has sha256" in msg
    assert f"shared data {shared / 'fashion-mnist'}: no " in msg
    assert "fetch fmnist" in msg


def test_nothing_found_says_how_to_get_the_package(tmp_path):
    with pytest.raises(D.DataError) as err:
        D.stage_fmnist(tmp_path / "root", download=False, progress=False)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--source" in msg
    assert "nothing (no source given and downloads disabled)" in msg


def test_load_fmnist_not_staged_names_the_command(tmp_path):
    with pytest.raises(D.DatasetNotStagedError,
                       match=r"Fashion-MNIST is not staged .*fetch fmnist --root"):
        D.load_fmnist(tmp_path)


def test_load_fmnist_rejects_bad_labels(tmp_path, debian):
    _, sums = debian
    raw = D.stage_fmnist(tmp_path / "root", download=False, checksums=sums, progress=False)
    data = bytearray((raw / "t10k-labels-idx1-ubyte").read_bytes())
    data[8] = 12
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes(data))
    with pytest.raises(D.DataError, match=r"label 12 \(Fashion-MNIST labels are 0..9\)"):
        D.load_fmnist(tmp_path / "root")


def test_cli_fetch_alias_and_status(tmp_path, debian, monkeypatch, capsys):
    _, sums = debian
    for name, value in sums.items():
        monkeypatch.setitem(D.FMNIST_SHA256, name, value)
    root = tmp_path / "r"
    assert D.main(["fetch", "fashion-mnist", "fmnist", "--root", str(root), "--no-download",
                   "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("fmnist: ok") == 1 and str(D.fmnist_raw_dir(root)) in out
    assert D.main(["status", "--root", str(root), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "fmnist:       staged (verified)" in out and "mnist:        missing" in out


def test_cli_failure_exit_code(tmp_path, capsys):
    assert D.main(["fetch", "fmnist", "--root", str(tmp_path), "--no-download", "-q"]) == 1
    assert "fmnist: FAILED" in capsys.readouterr().err
