"""FastNet: a small, wide-late VGG-style network for reaching high CIFAR-10 accuracy in few epochs.

The shape follows the speed-record networks (Page's ResNet-9 and Jordan's airbench): a cheap stem, then three
stages of conv -> 2x2 max-pool -> BatchNorm -> GELU -> conv -> BatchNorm -> GELU, global max-pool, one linear
layer. Pooling before the norm and activation runs them on a quarter of the pixels; most channels sit at the
low resolutions where they cost least.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import GlobalMaxPool
from cnnbench.models.registry import create_model, register_model


def conv_bn_gelu(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    """3x3 "same" convolution (no bias), an optional 2x2 max-pool, BatchNorm and GELU."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(out_channels), nn.GELU())


class FastNet(ImageClassifier):
    """FastNet: few epochs to a good CIFAR-10 model (``configs/cifar10/fast.yaml``; its figures in the README).

    Args:
        stem_width: Channels of the stem convolution.
        widths: Channels of each stage (each halves the resolution).
    """

    def __init__(self, stem_width: int = 24, widths: tuple[int, ...] = (64, 128, 256), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = "fastnet"
        self.backbone = create_model(self.model_name, stem_width=stem_width, widths=widths, **self.backbone_kwargs)


@register_model(FastNet)
def fastnet(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    stem_width: int = 24,
    widths: tuple[int, ...] = (64, 128, 256),
) -> nn.Module:
    """FastNet with a ``stem_width`` stem and one stage per entry of ``widths`` (32->16->8->4 for three)."""
    layers, channels = [conv_bn_gelu(in_channels, stem_width)], stem_width
    for width in widths:
        layers += [conv_bn_gelu(channels, width, pool=True), conv_bn_gelu(width, width)]
        channels = width
    return nn.Sequential(*layers, GlobalMaxPool(), nn.Flatten(), nn.Linear(channels, num_classes, bias=False))
