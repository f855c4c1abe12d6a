"""MixUp and CutMix of whole training batches, drawn from the batch's own seeds so that exact resume holds.

The math is that of torchvision's ``transforms.v2.MixUp`` and ``CutMix``: each image is mixed with the batch
rolled by one, ``lam ~ Beta(alpha, alpha)``; MixUp blends the images, CutMix pastes a box of side
``sqrt(1 - lam)`` of the image, centred uniformly (clipped at the borders), and sets ``lam`` to the unpasted
area. The targets become ``lam * one_hot(y) + (1 - lam) * one_hot(y rolled)``. Unlike torchvision, nothing is
drawn from the global RNG: a generator seeded with the first image's sampler seed draws whether the batch is
mixed, which of the two ops (when both are on, each half the time), ``lam`` and the box. The draw happens on
the host before the batch is copied to the device (no device sync per step).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class MixDraw(NamedTuple):
    """One batch's mixing: ``op`` is ``none``, ``mixup`` or ``cutmix``; the box is (top, left, bottom, right)."""

    op: str
    lam: float
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


def draw_mix(seed: int, size: int, mixup_alpha: float, cutmix_alpha: float, mix_prob: float) -> MixDraw:
    """The mixing of a batch of ``size`` x ``size`` images, a pure function of ``seed`` (the batch's first seed)."""
    rng = np.random.default_rng(seed)
    ops = [(op, alpha) for op, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if alpha > 0]
    if not ops or rng.random() >= mix_prob:
        return MixDraw("none", 1.0)
    op, alpha = ops[int(rng.integers(len(ops)))]
    lam = float(rng.beta(alpha, alpha))
    if op == "mixup":
        return MixDraw(op, lam)
    # torchvision's CutMix: a box centred at a uniform pixel, half-side sqrt(1 - lam) / 2 of the image, clipped.
    cy, cx = int(rng.integers(size)), int(rng.integers(size))
    half = int(0.5 * math.sqrt(1.0 - lam) * size)
    top, bottom = max(cy - half, 0), min(cy + half, size)
    left, right = max(cx - half, 0), min(cx + half, size)
    return MixDraw(op, 1.0 - (bottom - top) * (right - left) / (size * size), (top, left, bottom, right))


def apply_mix(images: Tensor, labels: Tensor, num_classes: int, draw: MixDraw) -> tuple[Tensor, Tensor]:
    """The mixed images and their (N, C) soft targets: each image with its neighbour in the batch rolled by one."""
    # float32 whatever the images' dtype (rows sum to 1); scatter_, not F.one_hot, whose range checks read the labels'
    # min and max back to the host on the CPU.
    targets = torch.zeros(len(labels), num_classes, device=labels.device).scatter_(1, labels[:, None], 1.0)
    if draw.op == "none":
        return images, targets
    targets = draw.lam * targets + (1.0 - draw.lam) * targets.roll(1, 0)
    if draw.op == "mixup":
        return torch.lerp(images.roll(1, 0), images, draw.lam), targets
    top, left, bottom, right = draw.box
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = images.roll(1, 0)[..., top:bottom, left:right]
    return mixed, targets
