"""The progress bar of cnnbench runs: Lightning's Rich bar without the logger version number, drawn at most
``REDRAWS_PER_S`` times a second."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar

# A small model on a CPU runs a hundred steps a second; redrawing the bar and gathering its metrics at each one
# costs a few percent of the step. Ten redraws a second look the same.
REDRAWS_PER_S = 10


class RunProgressBar(RichProgressBar):
    """Rich progress bar that shows the logged metrics only, redrawn at most ``REDRAWS_PER_S`` times a second.

    Lightning adds ``v_num`` (the loggers' version); a cnnbench run is named by its folder, so the number says
    nothing (and with W&B it is the tail of a run id). The last batch of an epoch is always drawn.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Lightning's bar polls from a thread at refresh_rate (100/s by default): each wake-up takes the GIL from
        # the training loop. It needs to wake no more often than the bar is redrawn.
        kwargs.setdefault("refresh_rate", REDRAWS_PER_S)
        super().__init__(*args, **kwargs)
        self._last_drawn = float("-inf")
        self._clock = time.monotonic

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def _due(self, batch_idx: int, batches: int | float) -> bool:
        now = self._clock()
        if batch_idx + 1 < batches and now - self._last_drawn < 1 / REDRAWS_PER_S:
            return False
        self._last_drawn = now
        return True

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._due(batch_idx, trainer.num_training_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        batches = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        if self._due(batch_idx, batches[dataloader_idx]):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
