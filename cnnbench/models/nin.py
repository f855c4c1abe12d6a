"""Network in Network (Lin et al., 2013), the CIFAR-10 configuration of the paper."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import conv_bn_relu
from cnnbench.models.registry import create_model, register_model


def mlpconv(in_channels: int, widths: tuple[int, int, int], kernel_size: int, batch_norm: bool) -> nn.Sequential:
    """One "mlpconv" block: a spatial convolution followed by two 1x1 convolutions (a per-pixel MLP)."""
    c1, c2, c3 = widths
    return nn.Sequential(
        conv_bn_relu(in_channels, c1, kernel_size, batch_norm=batch_norm),
        conv_bn_relu(c1, c2, 1, batch_norm=batch_norm),
        conv_bn_relu(c2, c3, 1, batch_norm=batch_norm),
    )


class NiN(ImageClassifier):
    """Network in Network.

    Args:
        batch_norm: BatchNorm after every convolution but the last.
        dropout: Dropout after the first two blocks.
    """

    def __init__(self, batch_norm: bool = True, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = "nin"
        self.backbone = create_model(self.model_name, batch_norm=batch_norm, dropout=dropout, **self.backbone_kwargs)


@register_model(NiN)
def nin(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batch_norm: bool = True, dropout: float = 0.5
) -> nn.Module:
    """Three mlpconv blocks (192-160-96, 192-192-192, 192-192-classes) with pooling and dropout between them.

    The last 1x1 convolution outputs one map per class, averaged globally into the logits: no linear layer.
    Unlike the paper, that last convolution has no ReLU (logits may be negative); BatchNorm is a modern addition
    (``batch_norm=False`` for the original).
    """
    return nn.Sequential(
        mlpconv(in_channels, (192, 160, 96), 5, batch_norm),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Dropout(dropout),
        mlpconv(96, (192, 192, 192), 5, batch_norm),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Dropout(dropout),
        conv_bn_relu(192, 192, 3, batch_norm=batch_norm),
        conv_bn_relu(192, 192, 1, batch_norm=batch_norm),
        nn.Conv2d(192, num_classes, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
