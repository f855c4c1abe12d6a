"""Small building blocks shared by the model families."""

from __future__ import annotations

from typing import Literal

from torch import nn

Activation = Literal["relu", "tanh", "sigmoid"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def activation_layer(name: Activation) -> nn.Module:
    """The activation module called ``name``."""
    return _ACTIVATIONS[name]()


def conv_act(
    in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, activation: Activation = "relu"
) -> nn.Sequential:
    """Convolution followed by an activation (no normalization): the pre-BatchNorm building block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding), activation_layer(activation)
    )
