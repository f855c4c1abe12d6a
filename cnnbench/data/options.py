"""Checks of the data module's options whose ranges depend on the dataset or on each other."""

from __future__ import annotations

from lightning.fabric.utilities.data import AttributeDict

from cnnbench.data.datasets import DatasetSpec
from cnnbench.errors import BadValueError


def check_options(spec: DatasetSpec, hp: AttributeDict) -> None:
    """Refuse values outside the ranges that depend on the dataset or on each other (BadValueError); the
    annotations of ImageDataModule state the others."""
    if (hp.mixup_alpha or hp.cutmix_alpha) and not hp.fast:
        # The per-image path's batches carry no seeds to draw the mixing from reproducibly.
        raise BadValueError("--data.mixup_alpha and --data.cutmix_alpha need the in-memory path (--data.fast true)")
    if (hp.brightness or hp.contrast) and not hp.fast:
        raise BadValueError("--data.brightness and --data.contrast need the in-memory path (--data.fast true)")
    val_size, mean, std = hp.val_size, hp.mean, hp.std
    channels = 1 if hp.grayscale else spec.channels
    # 0 trains on the whole split without validation; some images must be left to train on.
    if spec.train_size and not 0 <= val_size < spec.train_size:
        raise BadValueError(f"--data.val_size must be from 0 to {spec.train_size - 1} ({spec.key}'s train split holds "
                            f"{spec.train_size} images; 0: no validation), got {val_size}")  # fmt: skip
    if (mean is None) != (std is None) or (mean is not None and {len(mean), len(std or [])} != {channels}):
        raise BadValueError(
            f"--data.mean and --data.std: give mean and std together, {channels} value(s) each (one per channel), "
            f"got {mean} and {std}"
        )
    if hp.alternating_flip and (hp.augment or spec.default_augment) == "none":
        raise BadValueError("--data.alternating_flip needs flips: --data.augment flip or crop_flip")
