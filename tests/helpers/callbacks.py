"""Callbacks the tests pass by class path (``--trainer.callbacks+=tests.helpers.callbacks.X``) to watch a run."""

from __future__ import annotations

from typing import Any, ClassVar

from lightning.pytorch import Callback, LightningModule, Trainer


class RecordLRs(Callback):
    """Records, before each training step, the LR of every optimizer parameter group with its ``lr_scale``."""

    seen: ClassVar[list[list[tuple[float, float]]]] = []  # per step: (lr, lr_scale) of each group

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        groups = trainer.optimizers[0].param_groups
        RecordLRs.seen.append([(g["lr"], g.get("lr_scale", 1.0)) for g in groups])
