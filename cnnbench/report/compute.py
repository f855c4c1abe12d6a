"""The compute a run spent, as the 2025 CIFAR-10 records count it: training at 3x the forward FLOPs per image seen,
plus evaluation at the forward FLOPs of every pass its test-time augmentation ran (``cnnbench.tta``)."""

from __future__ import annotations

from typing import Any

from cnnbench.data.datasets import DATASETS
from cnnbench.tta import evaluation_passes


def eval_passes(hparams: dict[str, Any], images: int, batch_size: int) -> int:
    """Forward passes (one image each) of one evaluation of ``images`` images under the model's TTA options."""
    flip, translate = bool(hparams.get("flip_tta")), bool(hparams.get("translate_tta"))
    share = float(hparams.get("tta_uncertain_fraction", 1.0))
    return evaluation_passes(images, batch_size, flip, translate, share)


def eval_pflops(
    hparams: dict[str, Any], mflops: float, batch_size: int, val_images: int, val_epochs: int, test_images: int
) -> float:
    """PFLOPs of ``val_epochs`` validations of ``val_images`` images and one test of ``test_images`` (0: none)."""
    passes = val_epochs * eval_passes(hparams, val_images, batch_size) + eval_passes(hparams, test_images, batch_size)
    return mflops * 1e6 * passes / 1e15


def planned_pflops(
    hparams: dict[str, Any], mflops: float, dataset: str, train_images: int, epochs: int, batch_size: int,
    val_images: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """(training, evaluation) PFLOPs of a run yet to run: ``epochs`` epochs of ``train_images``, a validation of
    ``val_images`` after each, and one test of the dataset's whole test split."""
    train = 3 * mflops * 1e6 * train_images * epochs / 1e15
    test_images = DATASETS[dataset].test_size
    return train, eval_pflops(hparams, mflops, batch_size, val_images, epochs if val_images else 0, test_images)
