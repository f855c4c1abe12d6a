"""The registered datasets: ``DATASETS`` maps each key (``--data.dataset``) to its ``DatasetSpec``.

Importing this package imports every module in it, and each family module (``cifar.py``, ``mnist.py``) registers
its specs. To add a dataset, register a spec in a new (or a family's) module here; ``tests/helpers/datasets.py``
then needs a tiny writer for it.
"""

import importlib
import pkgutil

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

for _module in pkgutil.iter_modules(__path__):  # families not imported above register themselves here
    importlib.import_module(f"{__name__}.{_module.name}")

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
