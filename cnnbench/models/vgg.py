"""VGG (Simonyan & Zisserman, 2014) for small images: five stages of 3x3 convolutions, then one linear layer."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import conv_bn_relu
from cnnbench.models.registry import create_model, register_model

VGGDepth = Literal[11, 13, 16, 19]

# Convolutions per stage; the stages have 64, 128, 256, 512 and 512 channels, each followed by a 2x2 max-pool.
_STAGE_DEPTHS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_STAGE_WIDTHS = (64, 128, 256, 512, 512)


def _vgg(depth: int, num_classes: int, in_channels: int, batch_norm: bool) -> nn.Sequential:
    """3x3 convolutions (each with BatchNorm unless ``batch_norm=False``), five max-pools to 1x1, one linear layer."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width, convs in zip(_STAGE_WIDTHS, _STAGE_DEPTHS[depth], strict=True):
        for _ in range(convs):
            layers.append(conv_bn_relu(channels, width, 3, batch_norm=batch_norm))
            channels = width
        # ceil_mode keeps a 1x1 map after five pools for 28x28 inputs as for 32x32 (28-14-7-4-2-1).
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels, num_classes))


class VGG(ImageClassifier):
    """VGG-11/13/16/19 with the CIFAR head (512 features to one linear layer).

    Args:
        depth: 11, 13, 16 or 19 weight layers (the original configurations A, B, D, E).
        batch_norm: BatchNorm after every convolution (without it the deep variants hardly train from scratch).
    """

    def __init__(self, depth: VGGDepth = 16, batch_norm: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = f"vgg{depth}"
        self.backbone = create_model(self.model_name, batch_norm=batch_norm, **self.backbone_kwargs)


@register_model(VGG, depth=11)
def vgg11(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batch_norm: bool = True) -> nn.Module:
    """VGG-11 (configuration A) for 32x32 or 28x28 inputs."""
    return _vgg(11, num_classes, in_channels, batch_norm)


@register_model(VGG, depth=13)
def vgg13(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batch_norm: bool = True) -> nn.Module:
    """VGG-13 (configuration B) for 32x32 or 28x28 inputs."""
    return _vgg(13, num_classes, in_channels, batch_norm)


@register_model(VGG, depth=16)
def vgg16(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batch_norm: bool = True) -> nn.Module:
    """VGG-16 (configuration D) for 32x32 or 28x28 inputs."""
    return _vgg(16, num_classes, in_channels, batch_norm)


@register_model(VGG, depth=19)
def vgg19(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, batch_norm: bool = True) -> nn.Module:
    """VGG-19 (configuration E) for 32x32 or 28x28 inputs."""
    return _vgg(19, num_classes, in_channels, batch_norm)
