"""Damaged dataset files: every file is checked against a known MD5 when first read, and parsed defensively."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import pytest
import torchvision

from cnnbench.data.datasets import DATASETS
from cnnbench.data.datasets import checksums as checksums_module
from cnnbench.data.datasets.checksums import MANIFEST, DamagedDatasetFileError
from tests.helpers.datasets import write_cifar10, write_cifar100, write_fashion_mnist, write_mnist
from tests.helpers.runs import base_args, main

# (dataset, writer, the file damaged): each on-disk format once, IDX both plain and gzipped.
FORMATS = {
    "cifar10": ("cifar10", write_cifar10, "data_batch_2"),
    "cifar100": ("cifar100", write_cifar100, "train"),
    "idx": ("fashion_mnist", write_fashion_mnist, "train-images-idx3-ubyte"),
    "idx_gz": ("mnist", lambda root: write_mnist(root, compress=True), "train-labels-idx1-ubyte.gz"),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(cache))
    return cache


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # in the pixels (or the compressed stream): still parses as the format
    path.write_bytes(bytes(data))


def damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    elif how == "malformed":  # the right name, other content: a text file where data belongs
        content = b"<html>404 Not Found</html>\n"
        path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    else:
        flip_byte(path)


@pytest.mark.parametrize("how", ["truncated", "malformed", "flipped"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_damaged_file_is_named_with_what_to_do(fmt: str, how: str, tmp_path: Path) -> None:
    key, write, name = FORMATS[fmt]
    write(tmp_path)
    path = tmp_path / DATASETS[key].folder / name
    damage(path, how)
    with pytest.raises(DamagedDatasetFileError) as err:
        DATASETS[key].load(tmp_path, train=True)
    message = str(err.value)
    assert str(path) in message and "MD5" in message and "--data.data_dir" in message and "delete it" in message


@pytest.mark.parametrize("how", ["truncated", "malformed"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_without_a_known_checksum_truncated_and_malformed_files_are_still_named(
    fmt: str, how: str, tmp_path: Path
) -> None:
    # A folder of the user's own (no checksums.md5, no official names in the spec): the readers' checks alone.
    key, write, name = FORMATS[fmt]
    write(tmp_path)
    folder = tmp_path / DATASETS[key].folder
    (folder / MANIFEST).unlink()
    damage(folder / name, how)
    spec = dataclasses.replace(DATASETS[key], checksums={})
    with pytest.raises(DamagedDatasetFileError) as err:
        spec.load(tmp_path, train=True)
    message = str(err.value)
    assert f"{folder / name} cannot be read" in message and "--data.data_dir" in message


def test_a_file_with_an_official_name_must_be_the_official_file(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / MANIFEST).unlink()  # the tiny files now claim to be CIFAR-10's own
    with pytest.raises(DamagedDatasetFileError, match="expected 40351d587109b95175f43aff81a1287e, the official"):
        DATASETS["cifar10"].load(tmp_path, train=False)


def test_the_official_checksums_are_torchvisions() -> None:
    published = {
        "cifar10": dict(torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list),
        "cifar100": dict(torchvision.datasets.CIFAR100.train_list + torchvision.datasets.CIFAR100.test_list),
        "mnist": dict(torchvision.datasets.MNIST.resources),
        "fashion_mnist": dict(torchvision.datasets.FashionMNIST.resources),
    }
    for cls, key in ((torchvision.datasets.CIFAR10, "cifar10"), (torchvision.datasets.CIFAR100, "cifar100")):
        published[key][cls.meta["filename"]] = cls.meta["md5"]
    for key, files in published.items():
        assert {name: DATASETS[key].checksums[name] for name in files} == files
        # and every file a split reads has a checksum, plain and gzipped alike for the IDX files
        assert all(f in DATASETS[key].checksums for f in DATASETS[key].files)
        if key.endswith("mnist"):
            assert all(f"{f}.gz" in DATASETS[key].checksums for f in DATASETS[key].files)


def test_a_checked_file_is_not_read_again_until_it_changes(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_fashion_mnist(tmp_path)
    hashed: list[str] = []
    md5_of = checksums_module.md5_of
    monkeypatch.setattr(checksums_module, "md5_of", lambda p: hashed.append(p.name) or md5_of(p))
    DATASETS["fashion_mnist"].load(tmp_path, train=False)
    assert sorted(hashed) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    DATASETS["fashion_mnist"].load(tmp_path, train=False)
    assert len(hashed) == 2  # the cache answered
    path = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    stat = path.stat()
    flip_byte(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: the ctime still tells
    with pytest.raises(DamagedDatasetFileError, match="t10k-images-idx3-ubyte is damaged"):
        DATASETS["fashion_mnist"].load(tmp_path, train=False)


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(blocker / "cache"))
    write_fashion_mnist(tmp_path)
    assert len(DATASETS["fashion_mnist"].load(tmp_path, train=False)[1]) == 30
    flip_byte(tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte")
    with pytest.raises(DamagedDatasetFileError):
        DATASETS["fashion_mnist"].load(tmp_path, train=False)


def test_fit_on_a_flipped_file_exits_2_with_one_line_and_writes_nothing(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # One flipped pixel bit: the file parses, so without the check the run would train (and test) on it silently.
    flip_byte(cifar_dir / "cifar-10-batches-py" / "test_batch")
    root = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    assert "test_batch is damaged" in line and "--data.data_dir" in line
    assert not root.exists() or not any(root.iterdir())  # no run folder
