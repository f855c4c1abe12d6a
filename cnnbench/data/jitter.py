"""Brightness and contrast jitter of training batches on the in-memory path (hiverge/cifar10-speedrun's color jitter).

On the normalized images: ``x -> (x + b) * c`` per image, ``b ~ U(-brightness, brightness)`` and
``c ~ U(1 - contrast, 1 + contrast)``. Both draws come from the image's augmentation seed (the sampler's, as its crop
and flip do), so a resumed or DDP-sharded run jitters each image as the uninterrupted one does.
"""

from __future__ import annotations

from torch import Tensor

# A seed is uniform on [0, 2**62). Its low digits choose the crop and flip (a few hundred values, and the alternating
# flip rewrites them by less than 2**8); the jitter reads two 15-bit fields above bit 32, independent of those.
FIELD_BITS = 15
BRIGHTNESS_SHIFT = 32
CONTRAST_SHIFT = BRIGHTNESS_SHIFT + FIELD_BITS


def seed_uniform(seeds: Tensor, shift: int) -> Tensor:
    """A float32 uniform on [0, 1) per seed from its bits ``shift .. shift + 15``."""
    field = (seeds >> shift) & ((1 << FIELD_BITS) - 1)
    return (field.float() + 0.5) / (1 << FIELD_BITS)


def color_jitter(images: Tensor, seeds: Tensor, brightness: float, contrast: float) -> Tensor:
    """``images`` (N, C, H, W, normalized float) shifted by a per-image brightness and scaled by a contrast factor."""
    seeds = seeds.to(images.device)
    shape = (len(images), 1, 1, 1)
    shift = (2 * seed_uniform(seeds, BRIGHTNESS_SHIFT) - 1).mul_(brightness).view(shape)
    scale = (2 * seed_uniform(seeds, CONTRAST_SHIFT) - 1).mul_(contrast).add_(1).view(shape)
    return (images + shift.to(images.dtype)) * scale.to(images.dtype)
