"""AirNet: the airbench-shaped network for few-epoch CIFAR-10 training.

The shape of Keller Jordan's airbench94 network, written for this codebase: a 2x2 patch-whitening first layer
(its weights set from the training images' patch covariance and frozen), then three groups of
conv -> 2x2 max-pool -> BatchNorm -> GELU -> conv -> BatchNorm -> GELU (64, 256, 256 channels), a 3x3 max-pool
and a linear layer whose logits are scaled down. Later convolutions start as identity maps on their first input
channels (dirac init), and BatchNorm learns only its bias (its scale stays 1), as in airbench.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt
from torch import Tensor, nn
from torch.optim import Optimizer

from cnnbench.classifier import ImageClassifier
from cnnbench.errors import BadValueError
from cnnbench.models.layers import GlobalMaxPool
from cnnbench.models.registry import create_model, register_model
from cnnbench.optim import schedule_steps


class ScaledLinear(nn.Linear):
    """A bias-free linear layer whose output is multiplied by ``scale``: small logits early in training."""

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * self.scale


def batch_norm(channels: int, affine_weight: bool, momentum: float) -> nn.BatchNorm2d:
    """BatchNorm whose scale is fixed at 1 unless ``affine_weight``: airbench trains only the shift.

    A run of a few hundred steps wants running statistics that follow the weights closely: a high ``momentum``
    (torch's convention: the weight of the newest batch).
    """
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    norm.weight.requires_grad_(affine_weight)
    return norm


Activation = Literal["gelu", "silu"]
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "silu": nn.SiLU}


def conv_group(
    in_channels: int, out_channels: int, affine_weight: bool, momentum: float, dirac: bool = True,
    activation: Activation = "gelu",
) -> nn.Sequential:  # fmt: skip
    """conv -> 2x2 max-pool -> BN -> act -> conv -> BN -> act (GELU or SiLU), convolutions bias-free (and
    dirac-initialized)."""
    act = ACTIVATIONS[activation]
    first = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    second = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
    if dirac:
        for conv in (first, second):
            dirac_init(conv)
    return nn.Sequential(
        first, nn.MaxPool2d(2), batch_norm(out_channels, affine_weight, momentum), act(),
        second, batch_norm(out_channels, affine_weight, momentum), act(),
    )  # fmt: skip


def dirac_init(conv: nn.Conv2d) -> None:
    """The default init, with the first ``min(in, out)`` filters replaced by identity maps of their input channel.

    The network then starts close to passing its whitened input through, which trains faster from scratch.
    """
    n = min(conv.in_channels, conv.out_channels)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:n])


def broadcast_from_rank_zero(tensors: list[Tensor]) -> None:
    """Set ``tensors`` on every process to rank 0's values (in place; nothing to do without a process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for tensor in tensors:
            torch.distributed.broadcast(tensor, src=0)


def whitening_weights(patches: Tensor, eps: float = 5e-4) -> Tensor:
    """Filters (2k, C, 2, 2) that whiten 2x2 patches (N, C, 2, 2): eigenvectors of their covariance scaled by
    1/sqrt(eigenvalue + eps), with their negatives so that a GELU after them loses no sign."""
    flat = patches.flatten(1).double()
    flat = flat - flat.mean(dim=0)
    covariance = flat.T @ flat / (len(flat) - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / (eigenvalues + eps).sqrt().unsqueeze(1)).float().view(-1, *patches.shape[1:])
    return torch.cat([filters, -filters])


class AirNet(ImageClassifier):
    """AirNet (airbench94's network shape; see the module docstring).

    Args:
        widths: Channels of the three conv groups.
        logit_scale: Multiplier of the logits.
        bn_weight: Train BatchNorm's scale too (airbench keeps it at 1).
        bn_momentum: BatchNorm's running-statistics momentum (torch's convention).
        whiten_images: Training images whose 2x2 patches set the whitening layer when a fit starts from scratch
            (a resumed fit keeps the checkpoint's). 0: no whitening, the first layer is an ordinary trained conv.
        whiten_bias_epochs: Epochs after which the whitening layer's bias stops training (airbench: 3); None
            trains it all run.
        whiten_bias_at_norm_lr: Train the whitening layer's bias at the BatchNorm biases' LR (``norm_lr_scale``
            times the LR), as airbench and the 2025 speedrun do; off, at the LR of the head.
        dirac: Dirac-initialize the convolutions (False: PyTorch's default init).
        activation: The conv groups' activation, ``gelu`` (airbench) or ``silu`` (hiverge's 2025 speedrun).
    """

    def __init__(
        self,
        widths: tuple[int, int, int] = (64, 256, 256),
        logit_scale: float = 1 / 9,
        bn_weight: bool = False,
        bn_momentum: float = 0.4,
        whiten_images: NonNegativeInt = 5000,
        whiten_bias_epochs: NonNegativeFloat | None = None,
        whiten_bias_at_norm_lr: bool = False,
        dirac: bool = True,
        activation: Activation = "gelu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # checks the annotations' ranges, these too
        self.model_name = "airnet"
        options = {"widths": widths, "logit_scale": logit_scale, "bn_weight": bn_weight, "bn_momentum": bn_momentum}
        self.backbone = create_model(self.model_name, **options, dirac=dirac, activation=activation,
                                     **self.backbone_kwargs)  # fmt: skip
        if whiten_images == 0:
            self.backbone[0].weight.requires_grad_(True)
        self._bias_frozen_at = 0  # the optimizer step at which the whitening bias stops training (0: never)

    def on_fit_start(self) -> None:
        # A fit from a checkpoint has the checkpoint's whitening layer (restored before this hook runs). Under DDP
        # rank 0 computes it and every rank receives it: eigh may differ in its last bits between machines, and DDP
        # broadcast the weights before this hook.
        if self.trainer.ckpt_path is None and self.hparams.whiten_images > 0:
            if self.trainer.global_rank == 0:
                self.init_whitening(self.training_images(self.hparams.whiten_images))
            whiten: nn.Conv2d = self.backbone[0]
            broadcast_from_rank_zero([whiten.weight.data, whiten.bias.data])

    def shifts_at_norm_lr(self) -> list[Tensor]:
        return [self.backbone[0].bias] if self.hparams.whiten_bias_at_norm_lr else []

    def on_train_start(self) -> None:
        epochs = self.hparams.whiten_bias_epochs
        if epochs is not None:
            self._bias_frozen_at = max(1, round(epochs * schedule_steps(self.trainer)[1]))

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # The optimizer skips a parameter without a gradient: no update, no decay, its momentum left as it was.
        # Dropping the gradient (not requires_grad) keeps DDP's gradient hooks as they were; decided by the step
        # alone, so a resumed run freezes it at the same step.
        if self._bias_frozen_at and self.trainer.global_step >= self._bias_frozen_at:
            self.backbone[0].bias.grad = None

    def training_images(self, n: int) -> Tensor:
        """The first ``n`` training images as the model sees them (float, normalized): the data module's own
        ``training_images(n)`` if it has one (cnnbench's: unaugmented), else the first batches of its train loader
        as its batch hooks deliver them (any LightningDataModule)."""
        data = self.trainer.datamodule
        if data is None:
            raise BadValueError("AirNet's whitening needs a data module (or --model.whiten_images 0)")
        if callable(getattr(data, "training_images", None)):
            return data.training_images(n)
        images: list[Tensor] = []
        for batch in data.train_dataloader():
            batch = data.on_before_batch_transfer(batch, 0)
            batch = data.on_after_batch_transfer(data.transfer_batch_to_device(batch, self.device, 0), 0)
            images.append((batch[0] if isinstance(batch, (tuple, list)) else batch).float().cpu())
            if sum(map(len, images)) >= n:
                break
        return torch.cat(images)[:n]

    @torch.no_grad()
    def init_whitening(self, images: Tensor) -> None:
        """Set the whitening filters from ``images`` (N, C, H, W), and their bias so the outputs start centered."""
        whiten: nn.Conv2d = self.backbone[0]
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).flatten(0, 2)
        weights = whitening_weights(patches).to(whiten.weight)
        whiten.weight.copy_(weights)
        whiten.bias.copy_(-(weights.flatten(1) @ patches.mean(dim=0).flatten().to(weights)))


@register_model(AirNet)
def airnet(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    widths: tuple[int, int, int] = (64, 256, 256),
    logit_scale: float = 1 / 9,
    bn_weight: bool = False,
    bn_momentum: float = 0.4,
    dirac: bool = True,
    activation: Activation = "gelu",
) -> nn.Module:
    """AirNet: a frozen 2x2 whitening layer (2 * 4 * ``in_channels`` filters), three conv groups, max-pool, linear.

    ``activation`` is the conv groups' (the 2025 CIFAR-10 speedrun uses SiLU); the whitening layer's stays GELU.
    """
    whiten_width = 2 * in_channels * 4
    whiten = nn.Conv2d(in_channels, whiten_width, 2, padding=0, bias=True)
    whiten.weight.requires_grad_(False)  # set from the data (AirNet.init_whitening), then kept
    layers: list[nn.Module] = [whiten, nn.GELU()]
    channels = whiten_width
    for width in widths:
        layers.append(conv_group(channels, width, bn_weight, bn_momentum, dirac, activation))
        channels = width
    # 31x31 after the unpadded 2x2 whitening: 15, 7, 3 after the three pools; the last max-pool takes all of it.
    layers += [GlobalMaxPool(), nn.Flatten(), ScaledLinear(channels, num_classes, logit_scale)]
    return nn.Sequential(*layers)
