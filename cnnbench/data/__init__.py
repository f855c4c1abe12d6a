"""The registered datasets (``cnnbench.data.datasets``) and the LightningDataModule that serves any of them."""

from cnnbench.data.datamodule import ImageDataModule
from cnnbench.data.datasets import (
    DATASETS,
    DatasetSpec,
    get_dataset,
    list_datasets,
    read_cifar10,
    read_cifar100,
    read_fashion_mnist,
    read_mnist,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ImageDataModule",
    "get_dataset",
    "list_datasets",
    "read_cifar10",
    "read_cifar100",
    "read_fashion_mnist",
    "read_mnist",
    "register_dataset",
]
