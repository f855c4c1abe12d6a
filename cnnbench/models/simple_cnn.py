"""The one-convolution CNN of the classic CIFAR-10 tutorial blog post."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.registry import create_model, register_model


class SimpleCNN(ImageClassifier):
    """One convolution, one pooling, one linear layer: the smallest baseline.

    Args:
        channels: Number of convolution filters (16 in the blog post).
    """

    def __init__(self, channels: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = "simple_cnn"
        self.backbone = create_model(self.model_name, channels=channels, **self.backbone_kwargs)


@register_model(SimpleCNN)
def simple_cnn(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, channels: int = 16) -> nn.Module:
    """Conv k3 (no padding) -> 2x2 max-pool -> ReLU -> Linear; 16*15*15 features at 32x32."""
    pooled = (image_size - 2) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size=3),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(channels * pooled * pooled, num_classes),
    )
