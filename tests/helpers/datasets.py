"""Tiny datasets written in the real on-disk formats (CIFAR pickles, IDX files), so the real readers run.

Each writer returns what the dataset's reader must give back: ``{"train": (images, labels), "test": ...}``
with uint8 images (N, C, H, W) and int64 labels. The layouts (folders, file names, pickle keys) are written out
here from torchvision's downloads, not taken from the specs, so a spec that reads the wrong place fails.
``TINY`` holds one entry per registered dataset (tests/test_datasets.py checks that none is missing).
Every file written is listed in its folder's ``checksums.md5``, as a user's own copy in a real format declares
itself: the files carry the official names but not the official bytes (cnnbench.data.datasets.checksums).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnbench.data.datasets.cifar import CIFAR100_CLASSES

Written = dict[str, tuple[np.ndarray, np.ndarray]]

CIFAR_TRAIN_PER_BATCH = 20  # 5 batches -> 100 train images
CIFAR_TEST = 30
IDX_TRAIN = 100
IDX_TEST = 30
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_images(
    labels: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator, num_classes: int = 10
) -> np.ndarray:
    """Noisy images whose brightness pattern depends on the label, so a model can learn them."""
    base = rng.integers(0, 256, size=(num_classes, *shape))
    noise = rng.integers(-40, 41, size=(len(labels), *shape))
    return np.clip(base[labels] + noise, 0, 255).astype(np.uint8)


# CIFAR: Python-2-style pickles of {"data": (N, 3072) uint8 rows, channel-major, <label key>: [...], ...}.


def write_pickle_batches(
    folder: Path, batches: list[tuple[str, int]], num_classes: int, rng: np.random.Generator, coarse: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write one pickle per ``(name, size)`` in ``batches``; return each batch's (N, 3, 32, 32) images and labels.

    ``coarse``: also store CIFAR-100's superclass labels (``coarse_labels``, other values than the fine ones,
    so a reader of the wrong key fails); the labels then go under ``fine_labels`` instead of ``labels``.
    """
    folder.mkdir(parents=True)
    written = {}
    for name, n in batches:
        labels = rng.integers(0, num_classes, size=n)
        data = class_images(labels, (3 * 32 * 32,), rng, num_classes)
        batch: dict[str, object] = {"batch_label": name, "data": data, "filenames": [f"{i}.png" for i in range(n)]}
        if coarse:
            batch |= {"fine_labels": labels.tolist(), "coarse_labels": ((labels + 1) % coarse).tolist()}
        else:
            batch["labels"] = labels.tolist()
        write_pickle(folder / name, batch)
        written[name] = (data.reshape(n, 3, 32, 32), labels.astype(np.int64))
    return written


def register_checksum(path: Path) -> None:
    """List ``path``'s MD5 in its folder's ``checksums.md5`` (replacing an earlier entry of the same name)."""
    manifest = path.parent / "checksums.md5"
    lines = manifest.read_text().splitlines() if manifest.exists() else []
    lines = [line for line in lines if line.split("  ", 1)[-1] != path.name]
    manifest.write_text("\n".join([*lines, f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.name}"]) + "\n")


def write_pickle(path: Path, content: dict[str, object]) -> None:
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    register_checksum(path)


def write_cifar10(root: Path, seed: int = 0, test_size: int = CIFAR_TEST) -> Written:
    """Write ``root/cifar-10-batches-py``: data_batch_1..5, test_batch (``test_size`` images) and batches.meta."""
    folder = root / "cifar-10-batches-py"
    train = [(f"data_batch_{i}", CIFAR_TRAIN_PER_BATCH) for i in range(1, 6)]
    written = write_pickle_batches(folder, [*train, ("test_batch", test_size)], 10, np.random.default_rng(seed))
    write_pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": CIFAR_TRAIN_PER_BATCH})
    parts = [written[name] for name, _ in train]
    return {"train": tuple(np.concatenate(p) for p in zip(*parts, strict=True)), "test": written["test_batch"]}


def write_cifar100(root: Path, seed: int = 0, class_names: list[str] | None = None) -> Written:
    """Write ``root/cifar-100-python``: train, test and meta (``class_names``: the fine names meta lists)."""
    folder = root / "cifar-100-python"
    batches = [("train", CIFAR_TRAIN_PER_BATCH * 5), ("test", CIFAR_TEST)]
    written = write_pickle_batches(folder, batches, 100, np.random.default_rng(seed), coarse=20)
    names = list(CIFAR100_CLASSES) if class_names is None else class_names
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": [f"super{i}" for i in range(20)]})
    return written


# MNIST and Fashion-MNIST: IDX files, a big-endian header (magic 0x0803 / 0x0801, then each dimension), then bytes.


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    register_checksum(path)


def write_idx_dataset(folder: Path, seed: int, compress: bool) -> Written:
    """Write the four IDX files of an MNIST-style dataset into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    written = {}
    for split, prefix, n in (("train", "train", IDX_TRAIN), ("test", "t10k", IDX_TEST)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = class_images(labels, (28, 28), rng)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
        written[split] = (images[:, None], labels.astype(np.int64))
    return written


def write_fashion_mnist(root: Path, seed: int = 0, compress: bool = False) -> Written:
    """Write ``root/FashionMNIST/raw`` (``compress``: the ``.gz`` files only)."""
    return write_idx_dataset(root / "FashionMNIST" / "raw", seed, compress)


def write_mnist(root: Path, seed: int = 0, compress: bool = False) -> Written:
    """Write ``root/MNIST/raw`` (``compress``: the ``.gz`` files only)."""
    return write_idx_dataset(root / "MNIST" / "raw", seed, compress)


@dataclass(frozen=True)
class TinyDataset:
    """A registered dataset's tiny writer, and the facts of the real dataset its spec must state."""

    write: Callable[[Path], Written]
    num_classes: int
    channels: int
    image_size: int


TINY: dict[str, TinyDataset] = {
    "cifar10": TinyDataset(write_cifar10, num_classes=10, channels=3, image_size=32),
    "cifar100": TinyDataset(write_cifar100, num_classes=100, channels=3, image_size=32),
    "fashion_mnist": TinyDataset(write_fashion_mnist, num_classes=10, channels=1, image_size=28),
    "mnist": TinyDataset(write_mnist, num_classes=10, channels=1, image_size=28),
}
