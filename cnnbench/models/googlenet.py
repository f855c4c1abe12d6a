"""GoogLeNet (Szegedy et al., 2014): Inception v1 with BatchNorm and a stem for 32x32 inputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import classifier_head, conv_bn_relu
from cnnbench.models.registry import create_model, register_model


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then 1x1."""

    def __init__(
        self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, c1, 1)
        self.branch3 = nn.Sequential(conv_bn_relu(in_channels, c3_reduce, 1), conv_bn_relu(c3_reduce, c3, 3))
        self.branch5 = nn.Sequential(conv_bn_relu(in_channels, c5_reduce, 1), conv_bn_relu(c5_reduce, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) of each Inception module, from the paper's table 1.
_STAGES: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),  # 3a, 3b
    (
        (192, 96, 208, 16, 48, 64),  # 4a
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),  # 4e
    ),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),  # 5a, 5b
)


class GoogLeNet(ImageClassifier):
    """GoogLeNet (Inception v1 with BatchNorm) for 32x32 and 28x28 inputs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = "googlenet"
        self.backbone = create_model(self.model_name, **self.backbone_kwargs)


@register_model(GoogLeNet)
def googlenet(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """Inception v1 for small images: a 3x3 convolution to 192 maps instead of the 224x224 stem, then
    inception 3a-3b, max-pool, 4a-4e, max-pool, 5a-5b, global average pooling and one linear layer (1024 to classes).

    The blog version this follows ends with ``nn.Softmax(dim=0)`` before the cross-entropy loss. That is a bug:
    the loss applies log-softmax itself, and dim 0 normalizes across the batch, not the classes. This model
    returns raw logits.
    """
    layers: list[nn.Module] = [conv_bn_relu(in_channels, 192, 3)]
    channels = 192
    for i, stage in enumerate(_STAGES):
        if i > 0:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        for widths in stage:
            block = Inception(channels, *widths)
            layers.append(block)
            channels = block.out_channels
    return nn.Sequential(*layers, classifier_head(channels, num_classes))
