"""LeNet-5 (LeCun et al., 1998), with the activation and pooling of the original or of modern recipes."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.models.layers import Activation, activation_layer, conv_act
from cnnbench.models.registry import create_model, register_model

Pooling = Literal["max", "avg"]


class LeNet5(ImageClassifier):
    """LeNet-5.

    Args:
        activation: ``relu`` (modern) or ``tanh``/``sigmoid`` (original and d2l versions).
        pooling: ``max`` (modern) or ``avg`` (original subsampling).
    """

    def __init__(self, activation: Activation = "relu", pooling: Pooling = "max", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_name = "lenet5"
        self.backbone = create_model(self.model_name, activation=activation, pooling=pooling, **self.backbone_kwargs)


@register_model(LeNet5)
def lenet5(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    activation: Activation = "relu",
    pooling: Pooling = "max",
) -> nn.Module:
    """Two 5x5 convolutions (6 and 16 maps) and three linear layers (120, 84, classes).

    Inputs smaller than 32x32 (Fashion-MNIST's 28x28) are zero-padded by 2 in the first convolution,
    as in the original paper's 32x32 frame, so the last feature map is 5x5 either way.
    """
    padding = 2 if image_size < 32 else 0
    side = ((image_size + 2 * padding - 4) // 2 - 4) // 2
    pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
    return nn.Sequential(
        conv_act(in_channels, 6, 5, padding=padding, activation=activation),
        pool(2),
        conv_act(6, 16, 5, activation=activation),
        pool(2),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120),
        activation_layer(activation),
        nn.Linear(120, 84),
        activation_layer(activation),
        nn.Linear(84, num_classes),
    )
