"""Brightness/contrast jitter of the in-memory path (cnnbench.data.jitter)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbench.data import ImageDataModule
from cnnbench.data.jitter import BRIGHTNESS_SHIFT, CONTRAST_SHIFT, color_jitter
from cnnbench.errors import BadValueError


def test_jitter_shifts_then_scales_by_the_seeds_draws() -> None:
    images = torch.randn(2, 3, 4, 4)
    # fields 0 and 2**15 - 1: the lowest and highest draws, (0.5 / 2**15) and (1 - 0.5 / 2**15)
    top = (1 << 15) - 1
    seeds = torch.tensor([(top << BRIGHTNESS_SHIFT) | 7, top << CONTRAST_SHIFT])
    low, high = 0.5 / 2**15, 1 - 0.5 / 2**15
    out = color_jitter(images, seeds, brightness=0.2, contrast=0.1)
    b = torch.tensor([(2 * high - 1) * 0.2, (2 * low - 1) * 0.2]).view(2, 1, 1, 1)
    c = torch.tensor([1 + (2 * low - 1) * 0.1, 1 + (2 * high - 1) * 0.1]).view(2, 1, 1, 1)
    torch.testing.assert_close(out, (images + b) * c)


def test_draws_span_the_ranges_independently_of_the_crop_and_flip_digits() -> None:
    seeds = torch.randint(0, 2**62, (20000,), generator=torch.Generator().manual_seed(0))
    out = color_jitter(torch.zeros(len(seeds), 1, 1, 1), seeds, brightness=0.3, contrast=0.0).flatten()
    assert out.min() > -0.3 and out.max() < 0.3 and out.min() < -0.29 and out.max() > 0.29
    assert abs(out.mean()) < 0.01
    flipped = (seeds // 81) % 2 == 1  # the flip digit at the default padding
    assert abs(out[flipped].mean() - out[~flipped].mean()) < 0.02
    scales = color_jitter(torch.ones(len(seeds), 1, 1, 1), seeds, brightness=0.0, contrast=0.2).flatten()
    assert abs(torch.corrcoef(torch.stack([out, scales]))[0, 1]) < 0.05  # brightness and contrast independent


def test_training_batches_are_jittered_and_evaluation_batches_are_not(cifar_dir: Path) -> None:
    def batches(**jitter: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=8, num_workers=0, **jitter)
        dm.setup("fit")
        train = next(iter(dm.train_dataloader()))
        val = next(iter(dm.val_dataloader()))
        return dm.on_after_batch_transfer(train, 0)[0], dm.on_after_batch_transfer(val, 0)[0], train.seeds

    plain_train, plain_val, seeds = batches()
    train, val, _ = batches(brightness=0.2, contrast=0.1)
    torch.testing.assert_close(train, color_jitter(plain_train, seeds, 0.2, 0.1))
    assert not torch.allclose(train, plain_train)
    assert torch.equal(val, plain_val)


def test_jitter_needs_the_in_memory_path_and_valid_ranges(cifar_dir: Path) -> None:
    with pytest.raises(BadValueError, match="--data.brightness"):
        ImageDataModule(data_dir=str(cifar_dir), fast=False, brightness=0.1)
    with pytest.raises(BadValueError, match="--data.contrast"):
        ImageDataModule(data_dir=str(cifar_dir), contrast=1.5)
