"""The fast data path: loaders yield image indices; the data module gathers and augments whole batches on the device.

Decoding and augmenting one image at a time in DataLoader workers costs a small CNN most of its epoch. Here the
split stays one uint8 tensor, copied once to the training device; a batch is cut by index and cropped, flipped,
resized and normalized as a few tensor ops. Each image's crop offset and flip come from the per-image seed that
ResumableSampler hands out, so the order, the augmentation and exact resume are those of the per-image path's
sampler (same distributions as RandomCrop(padding=4) and RandomHorizontalFlip, not the same pixels).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from lightning.fabric.utilities.data import AttributeDict
from torch import Tensor
from torch.nn import functional as F

from cnnbench.data.datasets import Augment, Split
from cnnbench.data.jitter import color_jitter
from cnnbench.data.mixing import MixDraw, apply_mix

PAD = 4  # default crop padding, as RandomCrop(size, padding=4): offsets 0..8 in each direction


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


PaddingMode = Literal["zeros", "reflect"]


def crop_flip(
    images: Tensor, seeds: Tensor, crop: bool, flip: bool, padding: int = PAD, padding_mode: PaddingMode = "zeros"
) -> Tensor:
    """Per-image random crop of the padded image (offsets from the seeds), then horizontal flip, batched.

    A seed says, in mixed radix, the row offset, the column offset (each ``0..2 * padding``) and the flip (see
    ``flip_place``). One gather with a flat per-pixel source index (offsets and flip folded in): twice as fast on
    the CPU as a row gather then a column gather, and far faster than four broadcast index tensors. ``reflect``
    padding mirrors the source coordinates instead of padding, so it costs nothing extra.
    """
    n, c, h, w = images.shape
    side = 2 * padding + 1
    seeds = seeds.to(images.device)
    zeros = torch.zeros_like(seeds)
    dy, dx = (seeds % side, (seeds // side) % side) if crop else (zeros, zeros)
    columns = torch.arange(w, device=images.device).expand(n, w)
    if flip:
        columns = torch.where(((seeds // flip_place(padding)) % 2 == 1).view(n, 1), w - 1 - columns, columns)
    rows = torch.arange(h, device=images.device) + dy.view(n, 1)
    columns = columns + dx.view(n, 1)
    source_images = images
    if crop and padding_mode == "reflect":  # coordinates in the unpadded image, mirrored at the borders
        rows, columns = reflect(rows - padding, h), reflect(columns - padding, w)
    elif crop:
        source_images = F.pad(images, (padding, padding, padding, padding))
    source = rows.view(n, h, 1) * source_images.shape[3] + columns.view(n, 1, w)
    gathered = source_images.flatten(2).gather(2, source.view(n, 1, h * w).expand(n, c, h * w))
    return gathered.view(n, c, h, w)


def reflect(coordinates: Tensor, size: int) -> Tensor:
    """Coordinates outside ``0..size-1`` mirrored back in, without repeating the edge (``F.pad``'s reflect)."""
    coordinates = coordinates.abs()
    return torch.where(coordinates > size - 1, 2 * (size - 1) - coordinates, coordinates)


def flip_place(padding: int) -> int:
    """Place value of the flip digit in an augmentation seed: after the two crop offsets' digits."""
    return (2 * padding + 1) ** 2


COIN_STREAM = 1 << 40  # offsets the coins' generator seed from the training order's (run seed + epoch)


def alternate_flips(
    indices: Tensor, seeds: Tensor, epoch: int, run_seed: int, padding: int, dataset_size: int
) -> Tensor:
    """Alternating flip: ``seeds`` with their flip digit set so that each image is flipped in every other epoch.

    Each image gets a fixed coin from the run's seed and its index; it is flipped as the coin says in even epochs
    and the other way in odd ones. Over any two epochs each image is seen once each way, where independent flips
    repeat a side half the time. A pure function of (seed, epoch, index): resume and DDP sharding keep it.
    """
    generator = torch.Generator().manual_seed(run_seed + COIN_STREAM)
    coins = torch.randint(0, 2, (dataset_size,), generator=generator)
    flips = coins[indices] ^ (epoch % 2)
    place = flip_place(padding)
    return seeds - ((seeds // place) % 2) * place + flips * place


def to_model_input(images: Tensor, mean: Tensor, std: Tensor, size: int | None) -> Tensor:
    """uint8 NCHW -> normalized float, resized (antialiased, as torchvision's Resize) when ``size`` is given."""
    x = images.float()
    if size is not None and size != x.shape[-1]:  # resizing is linear, so it commutes with the scaling below
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    # (x / 255 - mean) / std as one multiply-add pass over the batch.
    scale = (1.0 / (255.0 * std)).to(x.device).view(1, -1, 1, 1)
    shift = (-mean / std).to(x.device).view(1, -1, 1, 1)
    return torch.addcmul(shift, x, scale)


class DeviceBatches:
    """The data module's device side: each split copied once to the training device, and an ``IndexBatch`` made
    there into the model's input (gathered, cropped and flipped, normalized, jittered, mixed)."""

    def __init__(self) -> None:
        self._on_device: dict[str, Split] = {}  # each split, copied once to the training device
        self._normalization_cache: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}  # per device

    def __call__(
        self,
        batch: IndexBatch,
        splits: dict[str, Split],
        normalization: tuple[list[float], list[float]],
        augment: Augment,
        hp: AttributeDict,
        image_size: int,
        num_classes: int,
    ) -> tuple[Tensor, ...]:
        """``batch`` as the model takes it: (images, labels), or (images, hard labels, soft targets) when mixed."""
        device = batch.indices.device
        if batch.split not in self._on_device or self._on_device[batch.split][0].device != device:
            images, labels = splits[batch.split]
            self._on_device[batch.split] = (images.to(device), labels.to(device))
        images, labels = self._on_device[batch.split]
        x = images[batch.indices]
        if batch.split == "train" and augment != "none":  # the same crop and flip as ImageTensorDataset
            x = crop_flip(x, batch.seeds, augment == "crop_flip", True, hp.crop_padding, hp.padding_mode)
        x = to_model_input(x, *self._normalization_on(device, *normalization), image_size)
        if batch.split == "train" and (hp.brightness or hp.contrast):
            x = color_jitter(x, batch.seeds, hp.brightness, hp.contrast)
        if batch.mix is not None:  # (images, hard labels, soft targets): train accuracy counts the hard labels
            y = labels[batch.indices]
            mixed, targets = apply_mix(x, y, num_classes, batch.mix)
            return mixed, y, targets
        return x, labels[batch.indices]

    def _normalization_on(self, device: torch.device, mean: list[float], std: list[float]) -> tuple[Tensor, Tensor]:
        """Mean and std as tensors on ``device``, made once per value (no host-to-device copy per batch)."""
        key = (str(device), tuple(mean), tuple(std))
        if key not in self._normalization_cache:
            self._normalization_cache[key] = (torch.tensor(mean, device=device), torch.tensor(std, device=device))
        return self._normalization_cache[key]
