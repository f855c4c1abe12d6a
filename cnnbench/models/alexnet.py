"""AlexNet (Krizhevsky et al., 2012): the classic 224x224 network and two 32x32 adaptations from blog posts."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from cnnbench.classifier import ImageClassifier
from cnnbench.errors import IncompatibleInputError
from cnnbench.models.layers import conv_act, flat_features
from cnnbench.models.registry import create_model, register_model

AlexNetVariant = Literal["alexnet_cifar", "alexnet_cifar7", "alexnet"]


def _mlp_head(in_features: int, hidden: tuple[int, ...], num_classes: int, dropout: float) -> nn.Sequential:
    """Flatten, then (Dropout, Linear, ReLU) per hidden width, then the output layer (no dropout if 0)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def _alexnet(
    stem: list[nn.Module],
    widths: tuple[int, int, int, int],
    pool: nn.Module | None,
    hidden: tuple[int, ...],
    num_classes: int,
    in_channels: int,
    image_size: int,
    dropout: float,
) -> nn.Sequential:
    """AlexNet's shape: a stem (conv, pool, conv, pool) ending in ``widths[0]`` channels, three 3x3
    convolutions of ``widths[1:]`` channels, an optional pool, and an MLP head sized by a dry run."""
    c0, c1, c2, c3 = widths
    features = nn.Sequential(
        *stem,
        conv_act(c0, c1, 3, padding=1),
        conv_act(c1, c2, 3, padding=1),
        conv_act(c2, c3, 3, padding=1),
        *([pool] if pool is not None else []),
    )
    head = _mlp_head(flat_features(features, in_channels, image_size), hidden, num_classes, dropout)
    return nn.Sequential(features, head)


class AlexNet(ImageClassifier):
    """AlexNet in three variants.

    Args:
        variant: ``alexnet_cifar`` (3x3 convolutions for 32x32), ``alexnet_cifar7`` (7x7 first layer for
            32x32, small MLP) or ``alexnet`` (the classic, for 224x224: set ``--data.image_size 224``).
        dropout: Dropout before each hidden linear layer (None: the variant's default, 0.5 or 0 for cifar7).
    """

    def __init__(self, variant: AlexNetVariant = "alexnet_cifar", dropout: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        options = {} if dropout is None else {"dropout": dropout}
        self.model_name = variant
        self.backbone = create_model(variant, **options, **self.backbone_kwargs)


@register_model(AlexNet, variant="alexnet_cifar")
def alexnet_cifar(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, dropout: float = 0.5) -> nn.Module:
    """AlexNet for 32x32 inputs: 3x3 convolutions (64-192-384-256-256), three 2x2 max-pools, 4096-4096 MLP."""
    stem = [
        conv_act(in_channels, 64, 3, padding=1, stride=2),
        nn.MaxPool2d(2),
        conv_act(64, 192, 3, padding=1),
        nn.MaxPool2d(2),
    ]
    return _alexnet(
        stem, (192, 384, 256, 256), nn.MaxPool2d(2), (4096, 4096), num_classes, in_channels, image_size, dropout
    )


@register_model(AlexNet, variant="alexnet_cifar7")
def alexnet_cifar7(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, dropout: float = 0.0
) -> nn.Module:
    """AlexNet for 32x32 inputs with a 7x7 stride-2 first layer (96-256-384-384-256), a 1024-512 MLP, no dropout."""
    stem = [
        conv_act(in_channels, 96, 7, padding=2, stride=2),
        nn.MaxPool2d(3, stride=2),
        conv_act(96, 256, 5, padding=2),
        nn.MaxPool2d(3, stride=2),
    ]
    return _alexnet(stem, (256, 384, 384, 256), None, (1024, 512), num_classes, in_channels, image_size, dropout)


@register_model(AlexNet, image_size=224, variant="alexnet")
def alexnet(num_classes: int = 10, in_channels: int = 1, image_size: int = 224, dropout: float = 0.5) -> nn.Module:
    """The classic AlexNet for 224x224 inputs (11x11 stride-4 first layer, 4096-4096 MLP), Xavier-initialized.

    Without the original's two-GPU split and local response normalization, as in most reimplementations.
    Smaller images are rejected: resize them with the data module (``--data.image_size 224``).
    """
    if image_size < 65:  # the stride-4 11x11 stem and three 3x3/2 pools need at least this much
        raise IncompatibleInputError(
            f"alexnet needs inputs of at least 65x65 (224 is usual), not {image_size}x{image_size}: "
            "set --data.image_size 224"
        )
    stem = [
        conv_act(in_channels, 96, 11, padding=1, stride=4),
        nn.MaxPool2d(3, stride=2),
        conv_act(96, 256, 5, padding=2),
        nn.MaxPool2d(3, stride=2),
    ]
    pool = nn.MaxPool2d(3, stride=2)
    model = _alexnet(stem, (256, 384, 384, 256), pool, (4096, 4096), num_classes, in_channels, image_size, dropout)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
    return model
