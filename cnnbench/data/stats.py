"""Statistics and conversions of uint8 image splits: per-channel mean and std, and grayscale."""

from __future__ import annotations

import torch
from torch import Tensor

# ITU-R 601 luma weights, the ones torchvision's Grayscale uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def to_grayscale(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 1, H, W)."""
    return (images.float() * _LUMA).sum(dim=1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (unbiased) std of uint8 images, on the [0, 1] scale.

    Computed exactly from each channel's 256-bin histogram: far faster than converting the whole split to
    float64, and no 1 GiB temporary.
    """
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].flatten(), minlength=256).double()
        n = counts.sum()
        mean = (counts * values).sum() / n
        means.append(mean.item())
        stds.append(((counts * (values - mean) ** 2).sum() / (n - 1)).sqrt().item())
    return means, stds
