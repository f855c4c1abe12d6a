"""The two checkpoints every fit keeps: the best on ``val/acc`` and the latest state."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint, Timer
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnnbench.callbacks.stop_signals import REQUEUE, SIGTERM, SignalFlags
from cnnbench.compat import cluster_environment, request_sigterm_stop, skip_per_batch_sigterm_broadcast
from cnnbench.runs import BEST_FILENAME, LAST_NAME

# What stopped training, and how a resume continues it (LatestCheckpoint prints both when training ends).
STOP_MESSAGES = {
    "step": ("step limit reached", " without --trainer.max_steps or with a larger one"),
    "time": ("time limit reached", " without --trainer.max_time or with a larger one (it counts all sessions' time)"),
    "request": ("stop requested (trainer.should_stop)", ""),
}


def best_checkpoint(dirpath: Path, save_top_k: int = 1) -> ModelCheckpoint:
    """Keep the ``save_top_k`` checkpoints of highest ``val/acc``; epoch and accuracy in the file name."""
    checkpoint = ModelCheckpoint(
        dirpath=dirpath,
        filename=BEST_FILENAME,
        auto_insert_metric_name=False,
        monitor="val/acc",
        mode="max",
        save_top_k=save_top_k,
        # A run killed after saving a best checkpoint and before its last.ckpt resumes from an earlier state and
        # saves the same epoch's best again: it replaces the file (a "-v1" copy would be left behind, unseen by
        # --ckpt_path best and never pruned).
        enable_version_counter=False,
    )
    # It saves at epoch and validation ends only: its per-batch hook looks for step and time triggers it has none
    # of, at a cost of about 20 us a step on a CPU (None: Lightning skips the call, as for inherited no-op hooks).
    checkpoint.on_train_batch_end = None  # type: ignore[method-assign,assignment]
    return checkpoint


class LatestCheckpoint(Checkpoint):
    """Writes ``last.ckpt`` with the latest training state at every epoch end and every N steps.

    Lightning's ``save_last`` on a monitored ModelCheckpoint is only refreshed when that callback saves,
    so it can lag behind the real latest state; this callback always writes it. Being a ``Checkpoint``,
    Lightning runs it after the other callbacks, so the state it saves includes their updates (the best
    checkpoint's bookkeeping, this epoch's ``val/acc_best``). The CLI's AtomicCheckpointIO writes it, so a
    crash mid-write leaves the previous ``last.ckpt`` intact. On SIGTERM (preemption, ``scancel``, a
    container stop) it saves at a training batch end and Lightning stops (``SIGTERMException``: exit 143); under DDP
    every rank does so at the same step (``stop_signals``), and at an epoch's last batch it waits for the
    epoch's validation and end. Lightning's SLURM requeue handler saves ``hpc_ckpt_N.ckpt`` from inside the
    signal handler, wherever the step is (after the optimizer step but before its bookkeeping, say), so a
    requeued job could resume one step off; this callback defers that handler to a training batch end, where
    the state is whole, agreed on by all ranks alike.

    Planned stops that end training in the middle of an epoch (``--trainer.max_steps``, ``--trainer.max_time``,
    a callback setting ``trainer.should_stop`` by its ``on_train_batch_end``) are saved at the end of the last
    batch, like a periodic save: Lightning still runs the epoch-end hooks of the cut epoch, and a ``last.ckpt``
    written there records that epoch as processed (``epoch_progress.processed`` ahead of ``completed``), so a
    resume would start the next epoch (issue 17). Saved at the batch end, the loop state says "epoch in
    progress" and a resume continues with the next batch; when training ends, the stop and how to continue
    are printed. A stop requested at a validation or epoch end (EarlyStopping) stays final: saved at the epoch
    end as before. (With gradient accumulation, a stop between optimizer steps loses the partial sums, as
    SIGTERM does.)

    Args:
        dirpath: Folder of ``last.ckpt``.
        every_n_train_steps: Also save every this many optimizer steps (0: only at epoch ends).
    """

    def __init__(self, dirpath: Path, every_n_train_steps: int = 0) -> None:
        self.path = Path(dirpath) / LAST_NAME
        self.every_n_train_steps = every_n_train_steps
        self._last_saved_step = -1
        self._requeue_handler: Callable[[], object] | None = None  # Lightning's SLURM handler, if installed
        self._signals = SignalFlags()
        self._stop: tuple[str, int] | None = None  # (what stopped training, at which step) for a planned stop
        self._stop_requested_at_epoch_end = False  # trainer.should_stop came from a validation or epoch end

    @property
    def state_key(self) -> str:
        return "LatestCheckpoint"

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Half-written files of a run that was killed while saving: never loaded, so just clear them away.
        if trainer.is_global_zero:
            for stale in self.path.parent.glob(".*.tmp"):
                stale.unlink()

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._install_signal_handlers(trainer)  # a signal during the sanity check is acted on in training

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop, self._stop_requested_at_epoch_end = None, False
        self._install_signal_handlers(trainer)
        # Lightning's own agreement (rank 0's flag broadcast at every batch start) never sees a SIGTERM now, and
        # would cost a collective and a host-device sync per step.
        skip_per_batch_sigterm_broadcast(trainer)
        self._signals.start(trainer)

    def _install_signal_handlers(self, trainer: Trainer) -> None:
        # Lightning has installed its handlers by now (and restores the previous ones at teardown).
        environment = cluster_environment(trainer)
        requeue = None
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue and environment.requeue_signal:
            requeue = environment.requeue_signal
            handler = signal.getsignal(requeue)
            if callable(handler) and self._requeue_handler is None:
                self._requeue_handler = lambda: handler(requeue, None)
        self._signals.install(requeue if self._requeue_handler is not None else None)

    def _save(self, trainer: Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or self._last_saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_saved_step = trainer.global_step

    def _planned_stop(self, trainer: Trainer) -> str | None:
        """What ends training after the current batch (a key of ``STOP_MESSAGES``), or None if it goes on.

        Lightning's training epoch loop asks the same (its ``done``), of this public trainer state: a wrong
        answer costs at most an extra save (training goes on) or the old epoch-end save (a stop missed). The
        state is equal on every rank (Lightning's loop would diverge otherwise), so all ranks save together.
        """
        if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
            return "step"
        if not trainer.should_stop or self._stop_requested_at_epoch_end:
            return None
        # Lightning keeps training while min_epochs / min_steps are not met, whatever should_stop says.
        if (trainer.min_epochs and trainer.current_epoch < trainer.min_epochs) or (
            trainer.min_steps and trainer.global_step < trainer.min_steps
        ):
            return None
        timers = [c for c in trainer.callbacks if isinstance(c, Timer)]  # --trainer.max_time adds one
        if any((remaining := timer.time_remaining()) is not None and remaining <= 0 for timer in timers):
            return "time"
        return "request"

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        sigterm, requeue = self._signals.agree()  # every rank, at every batch end: the same answer at the same step
        if requeue and self._requeue_handler is not None:
            self._signals.clear(REQUEUE)
            rank_zero_info("cnnbench: requeue signal: saving Lightning's hpc checkpoint and requeueing the job")
            self._requeue_handler()
        if sigterm and batch_idx + 1 < trainer.num_training_batches:
            self._signals.clear(SIGTERM)
            self._save(trainer)  # the whole state, as a periodic save; Lightning logs the batch and stops
            request_sigterm_stop(trainer)  # on every rank at this step; on_exception below says where it saved
        stop = self._planned_stop(trainer)
        if stop is not None:
            self._stop = (stop, trainer.global_step)
            # At an epoch's last batch the epoch ends as usual and its end saves (validation and all included).
            if batch_idx + 1 < trainer.num_training_batches:
                self._save(trainer)
        # Not at an epoch's last batch: its validation comes next, and the epoch end saves the state after it (a
        # save here would stand in for that one, and a kill during validation would resume a "finished" epoch).
        n = self.every_n_train_steps
        if n > 0 and trainer.global_step % n == 0 and batch_idx + 1 < trainer.num_training_batches:
            self._save(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # EarlyStopping decides here (or at the epoch end, below): a final stop even where min_epochs delays it
        # into the next epoch. Callbacks run before this one (Lightning orders Checkpoint callbacks last).
        self._stop_requested_at_epoch_end |= trainer.should_stop and not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save(trainer)
        self._stop_requested_at_epoch_end |= trainer.should_stop

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._signals.finish()
        if self._stop is None or self._stop[1] != trainer.global_step:
            return  # no planned stop, or training went on after it (and the stop was not what ended it)
        if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
            return  # the limit coincided with the last epoch's end: nothing is left to resume
        if self._stop[0] == "step" and trainer.max_epochs in (None, -1):
            return  # max_steps alone is the run's length (its LR schedule spans it): the run is complete
        kind, step = self._stop
        what, how = STOP_MESSAGES[kind]
        rank_zero_info(f"cnnbench: {what} at step {step}, saved to {self.path}; resume with --ckpt_path last{how}.")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.training:
            self._save(trainer)
            rank_zero_info(
                f"cnnbench: SIGTERM: saved the state of step {trainer.global_step} to {self.path}; "
                "continue with --ckpt_path auto (or last)."
            )
