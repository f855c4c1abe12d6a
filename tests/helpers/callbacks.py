"""Callbacks the tests pass by class path (``--trainer.callbacks+=tests.helpers.callbacks.X``) to watch a run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from lightning.pytorch import Callback, LightningModule, Trainer


class RecordLRs(Callback):
    """Records, before each training step, the LR of every optimizer parameter group with its ``lr_scale``."""

    seen: ClassVar[list[list[tuple[float, float]]]] = []  # per step: (lr, lr_scale) of each group

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        groups = trainer.optimizers[0].param_groups
        RecordLRs.seen.append([(g["lr"], g.get("lr_scale", 1.0)) for g in groups])


class RecordLocalTrainAccuracy(Callback):
    """Appends, at each training epoch end and before the model logs (and so syncs) ``train/acc``, this rank's own
    counts of correct and seen images to ``$CNNBENCH_TEST_RECORDS/train_acc.rank<N>.jsonl``."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        state = pl_module.train_acc  # this rank's running counts (compute() would add them across ranks)
        record = {"epoch": trainer.current_epoch, "correct": int(state.correct), "seen": int(state.count)}
        path = Path(os.environ["CNNBENCH_TEST_RECORDS"]) / f"train_acc.rank{trainer.global_rank}.jsonl"
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
