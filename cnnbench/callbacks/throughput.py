"""Training speed per epoch, logged beside the metrics: images/s and seconds per epoch."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback


class EpochThroughput(Callback):
    """Logs ``train/img_s`` (training images per second over the epoch's batches, all ranks together) and
    ``train/epoch_s`` (wall time of the epoch, validation included: what a user waits for). An epoch resumed in
    the middle reports the part trained after the resume."""

    def __init__(self) -> None:
        self._start = self._last_batch_end = 0.0
        self._images = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A run resumed mid-epoch gets no on_train_epoch_start for that epoch: time the rest of it from here.
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last_batch_end = time.perf_counter()
        self._images = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        self._images += len(batch[-1]) * trainer.world_size
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._images == 0:
            return
        train_s = self._last_batch_end - self._start
        pl_module.log("train/img_s", self._images / max(train_s, 1e-9), on_epoch=True, rank_zero_only=True)
        pl_module.log("train/epoch_s", time.perf_counter() - self._start, on_epoch=True, rank_zero_only=True)
