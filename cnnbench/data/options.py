"""Checks of the data module's options whose ranges depend on the dataset or on each other."""

from __future__ import annotations

from cnnbench.data.datasets import DatasetSpec
from cnnbench.errors import BadValueError


def check_options(spec: DatasetSpec, val_size: int, mean: list[float] | None, std: list[float] | None,
                  channels: int) -> None:  # fmt: skip
    """Refuse values outside the ranges that depend on the dataset or on each other (BadValueError); the
    annotations of ImageDataModule state the others."""
    # 0 trains on the whole split without validation; some images must be left to train on.
    if spec.train_size and not 0 <= val_size < spec.train_size:
        raise BadValueError(f"--data.val_size must be from 0 to {spec.train_size - 1} ({spec.key}'s train split holds "
                            f"{spec.train_size} images; 0: no validation), got {val_size}")  # fmt: skip
    if (mean is None) != (std is None) or (mean is not None and {len(mean), len(std or [])} != {channels}):
        raise BadValueError(
            f"--data.mean and --data.std: give mean and std together, {channels} value(s) each (one per channel), "
            f"got {mean} and {std}"
        )
