"""The two checkpoints every fit keeps: the best on ``val/acc`` and the latest state."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnbench.compat import cluster_environment
from cnnbench.runs import BEST_FILENAME, LAST_NAME


def best_checkpoint(dirpath: Path, save_top_k: int = 1) -> ModelCheckpoint:
    """Keep the ``save_top_k`` checkpoints of highest ``val/acc``; epoch and accuracy in the file name."""
    return ModelCheckpoint(
        dirpath=dirpath,
        filename=BEST_FILENAME,
        auto_insert_metric_name=False,
        monitor="val/acc",
        mode="max",
        save_top_k=save_top_k,
    )


class LatestCheckpoint(Checkpoint):
    """Writes ``last.ckpt`` with the latest training state at every epoch end and every N steps.

    Lightning's ``save_last`` on a monitored ModelCheckpoint is only refreshed when that callback saves,
    so it can lag behind the real latest state; this callback always writes it. Being a ``Checkpoint``,
    Lightning runs it after the other callbacks, so the state it saves includes their updates (the best
    checkpoint's bookkeeping, this epoch's ``val/acc_best``). The CLI's AtomicCheckpointIO writes it, so a
    crash mid-write leaves the previous ``last.ckpt`` intact. On SIGTERM (preemption, ``scancel``, a
    container stop) Lightning stops after the current batch and this callback saves that state first.
    Lightning's SLURM requeue handler saves ``hpc_ckpt_N.ckpt`` from inside the signal handler, wherever the
    step is (after the optimizer step but before its bookkeeping, say), so a requeued job could resume one
    step off; this callback defers that handler to the next training batch end, where the state is whole.

    Args:
        dirpath: Folder of ``last.ckpt``.
        every_n_train_steps: Also save every this many optimizer steps (0: only at epoch ends).
    """

    def __init__(self, dirpath: Path, every_n_train_steps: int = 0) -> None:
        self.path = Path(dirpath) / LAST_NAME
        self.every_n_train_steps = every_n_train_steps
        self._last_saved_step = -1
        self._requeue_handler: Callable[[], object] | None = None  # Lightning's SLURM handler, if installed
        self._requeue_requested = False

    @property
    def state_key(self) -> str:
        return "LatestCheckpoint"

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Half-written files of a run that was killed while saving: never loaded, so just clear them away.
        if trainer.is_global_zero:
            for stale in self.path.parent.glob(".*.tmp"):
                stale.unlink()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        environment = cluster_environment(trainer)
        if not (isinstance(environment, SLURMEnvironment) and environment.auto_requeue and environment.requeue_signal):
            return
        # Lightning has installed its handlers by now (and restores the previous ones at teardown).
        handler = signal.getsignal(environment.requeue_signal)
        if callable(handler):
            self._requeue_handler = lambda: handler(environment.requeue_signal, None)
            signal.signal(environment.requeue_signal, self._note_requeue_signal)

    def _note_requeue_signal(self, signum: int, frame: FrameType | None) -> None:
        rank_zero_info(f"cnnbench: requeue signal {signum}: saving at the end of the current training batch")
        self._requeue_requested = True

    def _requeue_if_signalled(self, trainer: Trainer) -> None:
        # Every rank must reach the save's barrier at the same step, so they agree first (one all-reduce under DDP).
        requested = self._requeue_requested
        if trainer.world_size > 1:
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if requested:
            self._requeue_requested = False
            self._requeue_handler()

    def _save(self, trainer: Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or self._last_saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if self._requeue_handler is not None:
            self._requeue_if_signalled(trainer)
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
