"""The two checkpoints every fit keeps: the best on ``val/acc`` and the latest state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

LAST_NAME = "last.ckpt"
BEST_PATTERN = re.compile(r"^best-epoch(\d+)-acc(\d+(?:\.\d+)?)\.ckpt$")


def best_checkpoint(dirpath: Path, save_top_k: int = 1) -> ModelCheckpoint:
    """Keep the ``save_top_k`` checkpoints of highest ``val/acc``; epoch and accuracy in the file name."""
    return ModelCheckpoint(
        dirpath=dirpath,
        filename="best-epoch{epoch:03d}-acc{val/acc:.4f}",
        auto_insert_metric_name=False,
        monitor="val/acc",
        mode="max",
        save_top_k=save_top_k,
    )


def find_best(dirpath: Path) -> Path | None:
    """The checkpoint in ``dirpath`` whose file name records the highest accuracy (latest epoch on ties)."""
    scored = [(float(m[2]), int(m[1]), p) for p in dirpath.glob("best-*.ckpt") if (m := BEST_PATTERN.match(p.name))]
    return max(scored)[2] if scored else None


class LatestCheckpoint(Checkpoint):
    """Writes ``last.ckpt`` with the latest training state at every epoch end and every N steps.

    Lightning's ``save_last`` on a monitored ModelCheckpoint is only refreshed when that callback saves,
    so it can lag behind the real latest state; this callback always writes it. Being a ``Checkpoint``,
    Lightning runs it after the other callbacks, so the state it saves includes their updates (the best
    checkpoint's bookkeeping, this epoch's ``val/acc_best``). The CLI's AtomicCheckpointIO writes it, so a
    crash mid-write leaves the previous ``last.ckpt`` intact. On SIGTERM (preemption, ``scancel``, a
    container stop) Lightning stops after the current batch and this callback saves that state first.

    Args:
        dirpath: Folder of ``last.ckpt``.
        every_n_train_steps: Also save every this many optimizer steps (0: only at epoch ends).
    """

    def __init__(self, dirpath: Path, every_n_train_steps: int = 0) -> None:
        self.path = Path(dirpath) / LAST_NAME
        self.every_n_train_steps = every_n_train_steps
        self._last_saved_step = -1

    @property
    def state_key(self) -> str:
        return "LatestCheckpoint"

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Half-written files of a run that was killed while saving: never loaded, so just clear them away.
        if trainer.is_global_zero:
            for stale in self.path.parent.glob(".*.tmp"):
                stale.unlink()

    def _save(self, trainer: Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or self._last_saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if self.every_n_train_steps > 0 and trainer.global_step % self.every_n_train_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.training:
            self._save(trainer)
            rank_zero_info(
                f"cnnbench: SIGTERM: saved the state of step {trainer.global_step} to {self.path}; "
                "continue with --ckpt_path auto (or last)."
            )
