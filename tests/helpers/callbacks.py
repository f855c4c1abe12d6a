"""Callbacks the tests pass by class path (``--trainer.callbacks+=tests.helpers.callbacks.X``) to watch a run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, ClassVar

from lightning.pytorch import Callback, LightningModule, Trainer

from cnnbench.checkpoint_io import AtomicCheckpointIO


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


class SignalAt(Callback):
    """Sends SIGTERM to its own process at chosen moments: ``$CNNBENCH_TEST_SIGNAL`` lists ``rank:hook:step``
    entries (comma-separated); the rank signals itself when the hook runs at that global step. Also writes
    ``$CNNBENCH_TEST_RECORDS/pid.rank<N>`` so a test can signal the ranks from outside."""

    def __init__(self) -> None:
        self.moments = {tuple(e.split(":")) for e in os.environ.get("CNNBENCH_TEST_SIGNAL", "").split(",") if e}

    def _at(self, hook: str, trainer: Trainer) -> None:
        if (str(trainer.global_rank), hook, str(trainer.global_step)) in self.moments:
            os.kill(os.getpid(), signal.SIGTERM)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if "CNNBENCH_TEST_RECORDS" in os.environ:
            path = Path(os.environ["CNNBENCH_TEST_RECORDS"]) / f"pid.rank{trainer.global_rank}"
            path.write_text(str(os.getpid()))

    def on_train_batch_start(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_train_batch_start", trainer)

    def on_before_optimizer_step(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_before_optimizer_step", trainer)

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_train_batch_end", trainer)

    def on_validation_batch_start(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_validation_batch_start", trainer)

    def on_save_checkpoint(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_save_checkpoint", trainer)

    def on_train_epoch_end(self, trainer: Trainer, *args: Any) -> None:
        self._at("on_train_epoch_end", trainer)


class PoisonRank(Callback):
    """At each training epoch end, makes a weight NaN on rank ``$CNNBENCH_TEST_POISON_RANK`` only (a diverged rank:
    under DDP the BatchNorm statistics of each rank's last batch differ, and so can their finiteness)."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if str(trainer.global_rank) == os.environ.get("CNNBENCH_TEST_POISON_RANK"):
            next(pl_module.parameters()).data.view(-1)[0] = float("nan")


class StopAfterSave(AtomicCheckpointIO):
    """cnnbench's checkpoint writer that, once ``$CNNBENCH_TEST_STOP_AFTER`` (a file name such as ``last.ckpt``) has
    been written ``$CNNBENCH_TEST_STOP_AT`` times (default 1), stops its own process with SIGSTOP: the test then
    holds a process frozen right after that write, to SIGKILL it there or let it go on (SIGCONT).

    Passed as ``--trainer.plugins=tests.helpers.callbacks.StopAfterSave``; a test hook, not part of cnnbench."""

    saves: ClassVar[int] = 0

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        if Path(path).name == os.environ.get("CNNBENCH_TEST_STOP_AFTER"):
            StopAfterSave.saves += 1
            if StopAfterSave.saves == int(os.environ.get("CNNBENCH_TEST_STOP_AT", "1")):
                os.kill(os.getpid(), signal.SIGSTOP)
