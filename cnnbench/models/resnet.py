"""ResNet (He et al., 2015) with the CIFAR stem: a 3x3 convolution instead of the 7x7 stride-2 one and max-pool."""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import classifier_head, conv_bn_relu
from cnnbench.models.registry import create_model, register_model

ResNetDepth = Literal[18, 34, 50]


class _Residual(nn.Module):
    """``relu(body(x) + shortcut(x))``; the shortcut projects (1x1 conv + BN) when the shape changes."""

    expansion = 1

    def __init__(self, body: nn.Sequential, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = body
        # Zero-init of the last BatchNorm's scale: each block starts as the identity, which eases early training.
        nn.init.zeros_(body[-1][-1].weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = conv_bn_relu(in_channels, out_channels, 1, stride=stride, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class BasicBlock(_Residual):
    """Two 3x3 convolutions (ResNet-18/34)."""

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        body = nn.Sequential(
            conv_bn_relu(in_channels, width, 3, stride=stride), conv_bn_relu(width, width, 3, relu=False)
        )
        super().__init__(body, in_channels, width, stride)


class Bottleneck(_Residual):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand to 4x the width (ResNet-50)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        out_channels = width * self.expansion
        body = nn.Sequential(
            conv_bn_relu(in_channels, width, 1),
            conv_bn_relu(width, width, 3, stride=stride),
            conv_bn_relu(width, out_channels, 1, relu=False),
        )
        super().__init__(body, in_channels, out_channels, stride)


# Blocks per stage; the stages have widths 64, 128, 256, 512 and strides 1, 2, 2, 2.
_LAYOUTS: dict[int, tuple[type[_Residual], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


def _resnet(depth: int, num_classes: int, in_channels: int) -> nn.Sequential:
    block, counts = _LAYOUTS[depth]
    layers: list[nn.Module] = [conv_bn_relu(in_channels, 64, 3)]
    channels = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
        for i in range(count):
            layers.append(block(channels, width, stride=2 if stage > 0 and i == 0 else 1))
            channels = width * block.expansion
    return nn.Sequential(*layers, classifier_head(channels, num_classes))


class ResNet(ImageClassifier):
    """ResNet-18/34/50 for 32x32 and 28x28 inputs.

    Args:
        depth: 18, 34 or 50 layers.
    """

    def __init__(self, depth: ResNetDepth = 18, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = f"resnet{depth}"
        self.backbone = create_model(self.model_name, **self.backbone_kwargs)


@register_model(ResNet, depth=18)
def resnet18(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """ResNet-18: basic blocks (2, 2, 2, 2), CIFAR stem."""
    return _resnet(18, num_classes, in_channels)


@register_model(ResNet, depth=34)
def resnet34(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """ResNet-34: basic blocks (3, 4, 6, 3), CIFAR stem."""
    return _resnet(34, num_classes, in_channels)


@register_model(ResNet, depth=50)
def resnet50(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), CIFAR stem."""
    return _resnet(50, num_classes, in_channels)
