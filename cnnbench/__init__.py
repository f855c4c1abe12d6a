"""cnnbench: train, compare and reproduce classic CNNs on CIFAR-10 and Fashion-MNIST with Lightning."""

__version__ = "0.1.0"
