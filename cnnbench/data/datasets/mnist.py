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

# MD5s of the official files: the .gz archives' are torchvision's (MNIST.resources, FashionMNIST.resources); the
# extracted files' are not published by torchvision. Fashion-MNIST's were computed from a copy whose recompression
# (gzip -6, the official timestamps) gives the published .gz MD5s; MNIST's are those several independent public
# projects list for the extracted files (no copy of MNIST was at hand to recompute them).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

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
        checksums=MNIST_MD5,
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
        checksums=FASHION_MNIST_MD5,
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
