"""Tiny datasets written in the real on-disk formats (CIFAR-10 pickles, IDX files), so the real readers run."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

CIFAR_TRAIN_PER_BATCH = 20  # 5 batches -> 100 train images
CIFAR_TEST = 30
FMNIST_TRAIN = 100
FMNIST_TEST = 30


def class_images(labels: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Noisy images whose brightness pattern depends on the label, so a model can learn them."""
    base = rng.integers(0, 256, size=(10, *shape))
    noise = rng.integers(-40, 41, size=(len(labels), *shape))
    return np.clip(base[labels] + noise, 0, 255).astype(np.uint8)


def write_cifar10(root: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write ``root/cifar-10-batches-py`` as Python-2-style pickles; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name, n in [*((f"data_batch_{i}", CIFAR_TRAIN_PER_BATCH) for i in range(1, 6)), ("test_batch", CIFAR_TEST)]:
        labels = rng.integers(0, 10, size=n)
        data = class_images(labels, (3 * 32 * 32,), rng)
        batch = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": data,
            "filenames": [f"{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[name] = (data.reshape(n, 3, 32, 32), labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane"] * 10, "num_cases_per_batch": CIFAR_TRAIN_PER_BATCH}, f, protocol=2)
    return written


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_fashion_mnist(root: Path, seed: int = 0, compress: bool = False) -> dict[str, np.ndarray]:
    """Write ``root/FashionMNIST/raw`` IDX files; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    written = {}
    for prefix, n in (("train", FMNIST_TRAIN), ("t10k", FMNIST_TEST)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = class_images(labels, (28, 28), rng)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
        written[prefix] = (images, labels)
    return written
