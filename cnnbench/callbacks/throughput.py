"""Training speed per epoch, logged beside the metrics: images/s and seconds per epoch."""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has run all the work queued on it (CUDA and MPS queue it; the CPU runs it at once)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class EpochThroughput(Callback):
    """Logs ``train/img_s`` (training images per second over the epoch's batches, all ranks together) and
    ``train/epoch_s`` (wall time of the epoch, validation included: what a user waits for). An epoch resumed in
    the middle reports the part trained after the resume.

    A GPU runs its work after the Python that queues it returns, so the clock is read after waiting for the
    device, at three points of an epoch only: its start, the end of its last training batch and its end. A wait
    per step would stall the queue the next step's work is added to.
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._train_end: float | None = None
        self._images = 0
        self._world_size = 1

    def _clock(self, trainer: Trainer) -> float:
        synchronize(trainer.strategy.root_device)
        return time.perf_counter()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A run resumed mid-epoch gets no on_train_epoch_start for that epoch: its first batch starts the timing.
        self._start = None
        self._world_size = trainer.world_size  # fixed for the fit; Lightning's property walks the strategy per call

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._begin(trainer)

    def _begin(self, trainer: Trainer) -> None:
        self._start, self._train_end = self._clock(trainer), None
        self._images = 0

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._start is None:
            self._begin(trainer)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += len(batch[-1]) * self._world_size
        if _last_training_batch(trainer, batch_idx):
            self._train_end = self._clock(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._images == 0 or self._start is None:
            return
        end = self._clock(trainer)
        train_s = (self._train_end or end) - self._start
        pl_module.log("train/img_s", self._images / max(train_s, 1e-9), on_epoch=True, rank_zero_only=True)
        pl_module.log("train/epoch_s", end - self._start, on_epoch=True, rank_zero_only=True)


def _last_training_batch(trainer: Trainer, batch_idx: int) -> bool:
    """Whether the batch that just ended is the epoch's last: the loader is exhausted, or max_steps is reached."""
    return (
        trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        or batch_idx + 1 >= trainer.num_training_batches
        or 0 <= trainer.max_steps <= trainer.global_step
    )
