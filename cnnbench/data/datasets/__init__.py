"""The registered datasets: ``DATASETS`` maps each key (``--data.dataset``) to its ``DatasetSpec``.

Importing this package registers the built-in families (one module each). To add a dataset, register a spec in
a module here and import that module below; ``tests/helpers/datasets.py`` then needs a tiny writer for it.
"""

from cnnbench.data.datasets.cifar import read_cifar10, read_cifar100
from cnnbench.data.datasets.formats import pickle_batches, pickled_names, read_idx, read_idx_split
from cnnbench.data.datasets.mnist import read_fashion_mnist, read_mnist
from cnnbench.data.datasets.registry import (
    DATASETS,
    Augment,
    DatasetFormatError,
    DatasetSpec,
    Split,
    UnknownDatasetError,
    get_dataset,
    list_datasets,
    register_dataset,
    torchvision_download,
)

__all__ = [
    "DATASETS",
    "Augment",
    "DatasetFormatError",
    "DatasetSpec",
    "Split",
    "UnknownDatasetError",
    "get_dataset",
    "list_datasets",
    "pickle_batches",
    "pickled_names",
    "read_cifar10",
    "read_cifar100",
    "read_fashion_mnist",
    "read_idx",
    "read_idx_split",
    "read_mnist",
    "register_dataset",
    "torchvision_download",
]
