"""DenseNet (Huang et al., 2016): DenseNet-121 with a CIFAR stem, and the small DenseNet-BC for 28x28."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import bn_relu_conv
from cnnbench.models.registry import create_model, register_model

DenseNetVariant = Literal["densenet121", "densenet_small"]


class DenseLayer(nn.Module):
    """Bottleneck (BN-ReLU-1x1 conv to 4k maps, BN-ReLU-3x3 conv to k maps) whose output joins its input."""

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            bn_relu_conv(in_channels, 4 * growth_rate, 1), bn_relu_conv(4 * growth_rate, growth_rate, 3)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def _densenet(
    blocks: tuple[int, ...], growth_rate: int, num_classes: int, in_channels: int, compression: float = 0.5
) -> nn.Sequential:
    """Stem (3x3 conv to 2k maps), dense blocks joined by transitions (BN-ReLU-1x1 conv that compresses the
    channels, 2x2 average pool), then BN-ReLU, global average pooling and one linear layer."""
    channels = 2 * growth_rate
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
    for i, count in enumerate(blocks):
        for _ in range(count):
            layers.append(DenseLayer(channels, growth_rate))
            channels += growth_rate
        if i < len(blocks) - 1:
            reduced = int(channels * compression)
            layers += [bn_relu_conv(channels, reduced, 1), nn.AvgPool2d(2)]
            channels = reduced
    layers += [
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    ]
    return nn.Sequential(*layers)


class DenseNet(ImageClassifier):
    """DenseNet.

    Args:
        variant: ``densenet121`` or ``densenet_small`` (DenseNet-BC-40, fit for 28x28 Fashion-MNIST).
    """

    def __init__(self, variant: DenseNetVariant = "densenet121", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = variant
        self.backbone = create_model(self.model_name, **self.backbone_kwargs)


@register_model(DenseNet, variant="densenet121")
def densenet121(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """DenseNet-121 (growth 32, blocks 6-12-24-16, compression 0.5) with a 3x3 stem and no stem pooling."""
    return _densenet((6, 12, 24, 16), 32, num_classes, in_channels)


@register_model(DenseNet, variant="densenet_small")
def densenet_small(num_classes: int = 10, in_channels: int = 3, image_size: int = 28) -> nn.Module:
    """DenseNet-BC-40 (growth 12, three blocks of 6 layers, compression 0.5): 28x28 -> 14 -> 7, about 0.2M params."""
    return _densenet((6, 6, 6), 12, num_classes, in_channels)
