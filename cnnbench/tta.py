"""Test-time augmentation on the least-confident share of the images, and what evaluation costs in forward passes.

The 2025 CIFAR-10 speedrun (hiverge/cifar10-speedrun) runs its multi-view TTA only on the quarter of the test images
whose plain prediction is least confident; the rest keep the plain pass's prediction. Here the share is chosen
within each evaluation batch (Lightning evaluates batch by batch), and the plain pass is reused as the TTA's
unshifted, unflipped view, so an image costs 1 + share * (views - 1) forward passes on average.
"""

from __future__ import annotations

import math

from torch import Tensor


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
