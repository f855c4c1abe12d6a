"""Datasets (CIFAR-10, Fashion-MNIST) and the LightningDataModule that serves them."""

from cnnbench.data.datamodule import ImageDataModule
from cnnbench.data.datasets import DATASETS, read_cifar10, read_fashion_mnist

__all__ = ["DATASETS", "ImageDataModule", "read_cifar10", "read_fashion_mnist"]
