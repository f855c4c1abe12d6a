"""Small building blocks shared by the model families."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Activation = Literal["relu", "tanh", "sigmoid"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def activation_layer(name: Activation) -> nn.Module:
    """The activation module called ``name``."""
    return _ACTIVATIONS[name]()


def conv_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    padding: int = 0,
    activation: Activation = "relu",
    stride: int = 1,
) -> nn.Sequential:
    """Convolution followed by an activation (no normalization): the pre-BatchNorm building block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        activation_layer(activation),
    )


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    batch_norm: bool = True,
    relu: bool = True,
) -> nn.Sequential:
    """Convolution, BatchNorm (optional) and ReLU (optional); "same" padding unless ``padding`` is given.

    The convolution has no bias when a BatchNorm follows (the norm's shift replaces it).
    """
    padding = kernel_size // 2 if padding is None else padding
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Pre-activation unit (BatchNorm, ReLU, bias-free convolution with "same" padding), as in DenseNet."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


def classifier_head(in_features: int, num_classes: int) -> nn.Sequential:
    """Global average pooling and one linear layer: the head of the modern all-convolutional nets."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_features, num_classes))


def flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Length of ``features``' flattened output for one image, found by a dry run (sizes the first linear layer)."""
    was_training = features.training
    features.eval()  # BatchNorm cannot normalize a batch of one image in training mode
    with torch.no_grad():
        out = features(torch.zeros(1, in_channels, image_size, image_size))
    features.train(was_training)
    return out.numel()


class GlobalMaxPool(nn.Module):
    """``nn.AdaptiveMaxPool2d(1)``'s forward, (N, C, H, W) -> (N, C, 1, 1), with a deterministic CUDA backward.

    AdaptiveMaxPool2d's backward scatters into the input's gradient with atomics, which
    ``torch.use_deterministic_algorithms(True)`` (``--trainer.deterministic true``) refuses on CUDA; ``amax``'s
    backward is elementwise. On ties amax shares the gradient between the maxima (max-pool gives it to one), which
    float activations after a convolution practically never have.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(-2, -1), keepdim=True)
