"""The fast data path: loaders yield image indices; the data module gathers and augments whole batches on the device.

Decoding and augmenting one image at a time in DataLoader workers costs a small CNN most of its epoch. Here the
split stays one uint8 tensor, copied once to the training device; a batch is cut by index and cropped, flipped,
resized and normalized as a few tensor ops. Each image's crop offset and flip come from the per-image seed that
ResumableSampler hands out, so the order, the augmentation and exact resume are those of the per-image path's
sampler (same distributions as RandomCrop(padding=4) and RandomHorizontalFlip, not the same pixels).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from cnnbench.data.mixing import MixDraw

PAD = 4  # RandomCrop(size, padding=4): offsets 0..8 in each direction


class IndexBatch(NamedTuple):
    """What a fast loader yields: the split, the image indices and their augmentation seeds (-1: none).

    ``mix`` is the batch's MixUp/CutMix draw (``cnnbench.data.mixing``), added on the host before the transfer.
    """

    split: str
    indices: Tensor
    seeds: Tensor
    mix: MixDraw | None = None


class IndexDataset(torch.utils.data.Dataset):
    """``len(split)`` items, each its own index (and seed, when the sampler gives one)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[int, int]:
        return item if isinstance(item, tuple) else (item, -1)


def index_collate(split: str):
    def collate(items: list[tuple[int, int]]) -> IndexBatch:
        indices, seeds = zip(*items, strict=True)
        return IndexBatch(split, torch.tensor(indices), torch.tensor(seeds))

    return collate


def crop_flip(images: Tensor, seeds: Tensor, crop: bool, flip: bool) -> Tensor:
    """Per-image random crop of the zero-padded image (offsets from the seeds), then horizontal flip, batched.

    One gather with a flat per-pixel source index (row offset, column offset and flip folded in): twice as fast
    on the CPU as a row gather then a column gather, and far faster than four broadcast index tensors.
    """
    n, c, h, w = images.shape
    side = 2 * PAD + 1
    seeds = seeds.to(images.device)
    zeros = torch.zeros_like(seeds)
    dy, dx = (seeds % side, (seeds // side) % side) if crop else (zeros, zeros)
    padded = F.pad(images, (PAD, PAD, PAD, PAD)) if crop else images
    columns = torch.arange(w, device=images.device).expand(n, w)
    if flip:
        columns = torch.where(((seeds // side**2) % 2 == 1).view(n, 1), w - 1 - columns, columns)
    rows = torch.arange(h, device=images.device) + dy.view(n, 1)
    source = rows.view(n, h, 1) * padded.shape[3] + (columns + dx.view(n, 1)).view(n, 1, w)
    return padded.flatten(2).gather(2, source.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)


def to_model_input(images: Tensor, mean: Tensor, std: Tensor, size: int | None) -> Tensor:
    """uint8 NCHW -> normalized float, resized (antialiased, as torchvision's Resize) when ``size`` is given."""
    x = images.float()
    if size is not None and size != x.shape[-1]:  # resizing is linear, so it commutes with the scaling below
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    # (x / 255 - mean) / std as one multiply-add pass over the batch.
    scale = (1.0 / (255.0 * std)).to(x.device).view(1, -1, 1, 1)
    shift = (-mean / std).to(x.device).view(1, -1, 1, 1)
    return torch.addcmul(shift, x, scale)
