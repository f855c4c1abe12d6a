"""The model zoo: backbones in a registry, each family wrapped by a LightningModule on :class:`ImageClassifier`."""

from cnnbench.classifier import ImageClassifier
from cnnbench.models.alexnet import AlexNet, alexnet, alexnet_cifar, alexnet_cifar7
from cnnbench.models.densenet import DenseNet, densenet121, densenet_small
from cnnbench.models.fastnet import FastNet, fastnet
from cnnbench.models.googlenet import GoogLeNet, googlenet
from cnnbench.models.lenet import LeNet5, lenet5
from cnnbench.models.nin import NiN, nin
from cnnbench.models.registry import create_model, list_models, register_model
from cnnbench.models.resnet import ResNet, resnet18, resnet34, resnet50
from cnnbench.models.simple_cnn import SimpleCNN, simple_cnn
from cnnbench.models.vgg import VGG, vgg11, vgg13, vgg16, vgg19

__all__ = [
    "VGG",
    "AlexNet",
    "DenseNet",
    "FastNet",
    "GoogLeNet",
    "ImageClassifier",
    "LeNet5",
    "NiN",
    "ResNet",
    "SimpleCNN",
    "alexnet",
    "alexnet_cifar",
    "alexnet_cifar7",
    "create_model",
    "densenet121",
    "densenet_small",
    "fastnet",
    "googlenet",
    "lenet5",
    "list_models",
    "nin",
    "register_model",
    "resnet18",
    "resnet34",
    "resnet50",
    "simple_cnn",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
]
