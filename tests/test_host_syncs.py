"""Zero host-device syncs per training step on fit's hot path (issue 27, item 5), counted on the CPU.

A sync on a GPU is the host waiting for a value of the device. The CPU never waits, so cnnbench.testing.syncs
counts by intent: within a window holding only device work (from the batch's ``on_after_batch_transfer``, where the
crop, flip and MixUp run on the device, through the step, EMA and lookahead, to the model's ``on_train_batch_end``,
which Lightning calls after every callback's), every op that hands a value to the host and every device-changing
copy or ``.cpu()``/``.tolist()``/``.numpy()``. The loading of a batch (host work, its seeds read on the host) stays
outside. Logging steps read the loss on purpose: log_every_n_steps keeps them out of steps 2-10.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnbench.callbacks.test_figures import TestFigures
from cnnbench.classifier import ImageClassifier
from cnnbench.data.datamodule import ImageDataModule
from cnnbench.testing.syncs import HostSyncCounter
from tests.helpers.runs import CnnbenchCLI, base_args

HOT_PATH = (
    "--data.fast=true", "--data.mixup_alpha=0.4", "--data.cutmix_alpha=1.0", "--model.ema_decay=0.9",
    "--model.lookahead_decay=0.774", "--model.lookahead_every=2", "--trainer.log_every_n_steps=50",
    "--trainer.max_steps=10",
)  # fmt: skip


def test_the_counter_sees_item_nonzero_and_host_copies() -> None:
    x = torch.randn(8)
    with HostSyncCounter() as counter:
        _ = x.sum().item(), bool(x[0] > 0), x.nonzero(), x.cpu(), x.tolist()
    assert {"_local_scalar_dense", "nonzero", "Tensor.cpu", "Tensor.tolist"} <= set(counter.counts)
    with HostSyncCounter() as counter:
        torch.lerp(x, x.roll(1), 0.3).add_(1).argmax()
    assert counter.total == 0


def test_training_steps_2_to_10_make_no_host_sync(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[Counter[str]] = []
    counter: HostSyncCounter | None = None
    after_transfer, batch_end = ImageDataModule.on_after_batch_transfer, ImageClassifier.on_train_batch_end

    def open_window(data: ImageDataModule, batch: Any, dataloader_idx: int) -> Any:
        nonlocal counter
        trainer = data.trainer
        if trainer is not None and trainer.training and 1 <= trainer.global_step <= 9:
            counter = HostSyncCounter().__enter__()
        return after_transfer(data, batch, dataloader_idx)

    def close_window(model: ImageClassifier, *args: Any) -> None:
        nonlocal counter
        batch_end(model, *args)
        if counter is not None:
            counter.__exit__(None, None, None)
            steps.append(counter.counts)
            counter = None

    monkeypatch.setattr(ImageDataModule, "on_after_batch_transfer", open_window)
    monkeypatch.setattr(ImageClassifier, "on_train_batch_end", close_window)
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, *HOT_PATH)])
    assert cli.trainer.global_step == 10
    assert len(steps) == 9
    assert steps == [Counter()] * 9


def test_test_figures_copy_nothing_per_batch(tmp_path: Path) -> None:
    figures = TestFigures(tmp_path, [str(c) for c in range(10)])
    figures.on_test_epoch_start(None, None)  # type: ignore[arg-type]
    with HostSyncCounter() as counter:
        for _ in range(3):
            batch = (torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,)))
            figures.on_test_batch_end(None, None, {"preds": torch.randint(0, 10, (16,))}, batch)  # type: ignore[arg-type]
    assert counter.total == 0, counter.counts
