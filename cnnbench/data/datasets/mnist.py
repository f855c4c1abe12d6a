"""MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., 2017): 28x28 grayscale, 60,000 train and 10,000 test.

Both ship as IDX files, plain or gzipped, in ``<Name>/raw/`` where torchvision downloads them.
"""

from __future__ import annotations

from pathlib import Path

import torchvision

from cnnbench.data.datasets.formats import read_idx_split
from cnnbench.data.datasets.registry import DatasetSpec, Split, register_dataset, torchvision_download

# The IDX file pairs (images, labels) of each split; both datasets use the same names.
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST = register_dataset(
    DatasetSpec(
        key="mnist",
        name="MNIST",
        classes=tuple(str(digit) for digit in range(10)),
        channels=1,
        image_size=28,
        folder="MNIST/raw",
        train_files=TRAIN_FILES,
        test_files=TEST_FILES,
        reader=read_idx_split,
        download=torchvision_download(torchvision.datasets.MNIST),
        default_augment="none",  # a mirrored digit is not the same digit: no flips
        train_size=60_000,
        test_size=10_000,
    )
)

FASHION_MNIST = register_dataset(
    DatasetSpec(
        key="fashion_mnist",
        name="Fashion-MNIST",
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
        folder="FashionMNIST/raw",
        train_files=TRAIN_FILES,
        test_files=TEST_FILES,
        reader=read_idx_split,
        download=torchvision_download(torchvision.datasets.FashionMNIST),
        default_augment="none",
        train_size=60_000,
        test_size=10_000,
    )
)


def read_mnist(folder: Path, train: bool) -> Split:
    """An MNIST split from ``folder`` (``<data_dir>/MNIST/raw``)."""
    return MNIST.read(folder, train)


def read_fashion_mnist(folder: Path, train: bool) -> Split:
    """A Fashion-MNIST split from ``folder`` (``<data_dir>/FashionMNIST/raw``)."""
    return FASHION_MNIST.read(folder, train)
