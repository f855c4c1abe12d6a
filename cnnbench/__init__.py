"""cnnbench: train, compare and reproduce classic CNNs on small image datasets (``cnnbench.data.list_datasets()``)."""

__version__ = "0.1.0"
