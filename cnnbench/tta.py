"""Test-time augmentation on the least-confident share of the images, and what evaluation costs in forward passes.

The 2025 CIFAR-10 speedrun (hiverge/cifar10-speedrun) runs its multi-view TTA only on the quarter of the test images
whose plain prediction is least confident; the rest keep the plain pass's prediction. Here the share is chosen
within each evaluation batch (Lightning evaluates batch by batch), and the plain pass is reused as the TTA's
unshifted, unflipped view, so an image costs 1 + share * (views - 1) forward passes on average.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

Logits = Callable[[Tensor], Tensor]  # a model: images to logits


def least_confident(logits: Tensor, share: float) -> Tensor:
    """Indices of the ``ceil(share * n)`` rows of ``logits`` (n, classes) with the lowest top softmax probability."""
    k = min(len(logits), math.ceil(share * len(logits)))
    confidence = logits.float().softmax(dim=1).amax(dim=1)
    return confidence.topk(k, largest=False).indices


def tta_views(flip: bool, translate: bool) -> int:
    """Forward passes per image of the full TTA: the image (and two shifted copies), each with its mirror image."""
    return (2 if flip else 1) * (3 if translate else 1)


def evaluation_passes(images: int, batch_size: int, flip: bool, translate: bool, share: float = 1.0) -> int:
    """Forward passes (one image each) that evaluating ``images`` images in batches of ``batch_size`` runs: each
    image's plain pass, plus the other TTA views on ``least_confident``'s share of each batch."""
    views = tta_views(flip, translate)
    if share >= 1.0 or views == 1:
        return images * views
    full, last = divmod(images, batch_size)
    covered = full * math.ceil(share * batch_size) + math.ceil(share * last)
    return images + covered * (views - 1)


def tta_logits(
    model: Logits, images: Tensor, flip: bool, translate: bool, share: float = 1.0, equal_weights: bool = False
) -> Tensor:
    """Logits of ``model`` for evaluation: test-time augmentation as ``flip`` and ``translate`` say, on the ``share``
    of the images least confident in their plain logits. The views' logits are averaged with the unshifted ones
    counting half and each shifted copy a quarter (airbench), or with ``equal_weights`` each view alike (the 2025
    speedrun)."""
    if share >= 1.0 or not (flip or translate):
        return _all_views(model, images, flip, translate, equal_weights)
    plain = model(images)
    chosen = least_confident(plain, share)
    if len(chosen) == 0:
        return plain
    logits = plain.clone()
    views = _all_views(model, images[chosen], flip, translate, equal_weights, plain[chosen])
    logits[chosen] = views.to(logits.dtype)
    return logits


def _all_views(
    model: Logits, images: Tensor, flip: bool, translate: bool, equal_weights: bool, plain: Tensor | None = None
) -> Tensor:
    """The TTA logits of ``images`` (``plain``: their logits without augmentation, if already computed)."""
    logits = _flip_mean(model, images, flip, plain)
    if translate:
        h, w = images.shape[-2:]
        padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
        shifted = _flip_mean(model, padded[..., :h, :w], flip) + _flip_mean(model, padded[..., 2:, 2:], flip)
        logits = (logits + shifted) / 3 if equal_weights else logits / 2 + shifted / 4
    return logits


def _flip_mean(model: Logits, images: Tensor, flip: bool, plain: Tensor | None = None) -> Tensor:
    """The logits of ``images`` (``plain`` if given); with ``flip`` the mean with their mirror images'."""
    logits = model(images) if plain is None else plain
    if flip:
        logits = (logits + model(images.flip(-1))) / 2
    return logits
