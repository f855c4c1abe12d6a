"""The model zoo: backbones in a registry, each wrapped by a LightningModule on :class:`ImageClassifier`."""

from cnnbench.classifier import ImageClassifier
from cnnbench.models.lenet import LeNet5, lenet5
from cnnbench.models.registry import create_model, list_models, register_model
from cnnbench.models.simple_cnn import SimpleCNN, simple_cnn

__all__ = [
    "ImageClassifier",
    "LeNet5",
    "SimpleCNN",
    "create_model",
    "lenet5",
    "list_models",
    "register_model",
    "simple_cnn",
]
