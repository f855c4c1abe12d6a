"""Readers for CIFAR-10 and Fashion-MNIST in torchvision's on-disk layout, returning uint8 tensors.

We read the files ourselves (rather than through torchvision's dataset classes) so that the whole
split lands in one uint8 NCHW tensor, and so that torchvision's md5 checks do not reject the tiny
real-format files the tests write. torchvision is still used to download.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torchvision
from torch import Tensor

from cnnbench.errors import DatasetNotFoundError

Split = tuple[Tensor, Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)


def read_cifar10(folder: Path, train: bool) -> Split:
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch["labels"])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (uncompressed, or the ``.gz`` beside it): big-endian header, then uint8 data."""
    opener = open if path.exists() else gzip.open
    with opener(path if path.exists() else path.with_name(path.name + ".gz"), "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte data
        raise ValueError(f"{path} is not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_fashion_mnist(folder: Path, train: bool) -> Split:
    prefix = "train" if train else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


@dataclass(frozen=True)
class DatasetSpec:
    """What cnnbench needs to know about one dataset."""

    name: str
    folder: str  # relative to data_dir, as torchvision lays it out
    files: tuple[str, ...]  # files that must exist in ``folder``
    classes: tuple[str, ...]
    channels: int
    image_size: int
    default_augment: str
    reader: Callable[[Path, bool], Split]
    downloader: Callable[..., object]  # torchvision dataset class, used with download=True

    def missing_files(self, data_dir: Path) -> list[str]:
        folder = data_dir / self.folder
        return [f for f in self.files if not (folder / f).exists() and not (folder / f"{f}.gz").exists()]

    def ensure_available(self, data_dir: Path, download: bool) -> None:
        """Download missing files if allowed; otherwise raise one clear error naming the folder."""
        missing = self.missing_files(data_dir)
        if not missing:
            return
        reason = "downloading is off (--data.download false)"
        if download:
            try:
                self.downloader(str(data_dir), train=True, download=True)
                self.downloader(str(data_dir), train=False, download=True)
            except (URLError, OSError, RuntimeError) as exc:
                reason = f"the download failed ({exc.__class__.__name__}: {exc})"
            missing = self.missing_files(data_dir)
            if not missing:
                return
        raise DatasetNotFoundError(
            f"{self.name} not found in {data_dir / self.folder} (missing: {', '.join(missing)}) and {reason}. "
            f"Point --data.data_dir at the folder that holds {self.folder}/ "
            "(on the cnnbench dev machines: --data.data_dir ../shared/data), or run once with internet access."
        )

    def load(self, data_dir: Path, train: bool) -> Split:
        return self.reader(data_dir / self.folder, train)


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="CIFAR-10",
        folder="cifar-10-batches-py",
        files=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        channels=3,
        image_size=32,
        default_augment="crop_flip",
        reader=read_cifar10,
        downloader=torchvision.datasets.CIFAR10,
    ),
    "fashion_mnist": DatasetSpec(
        name="Fashion-MNIST",
        folder="FashionMNIST/raw",
        files=(
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        channels=1,
        image_size=28,
        default_augment="none",
        reader=read_fashion_mnist,
        downloader=torchvision.datasets.FashionMNIST,
    ),
}
