"""Stop a fit whose loss or weights become NaN/inf, before such a state is validated or saved."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from cnnbench.compat import should_update_logs
from cnnbench.errors import DivergedError
from cnnbench.runs import LAST_NAME


def all_finite(tensors: list[Tensor]) -> bool:
    """Whether every floating-point tensor holds only finite values (one host-device sync for them all)."""
    checks = [t.isfinite().all() for t in tensors if t.is_floating_point() and t.numel()]
    return bool(torch.stack([c.to(checks[0].device) for c in checks]).all()) if checks else True


def weights(module: torch.nn.Module) -> list[Tensor]:
    """The parameters and buffers (BatchNorm statistics) of ``module``."""
    return [*module.parameters(), *module.buffers()]


class DivergenceGuard(Callback):
    """Ends a diverged fit with one line naming the step and the last good checkpoint (a ``DivergedError``).

    A NaN/inf loss trains on silently: every later weight is NaN and, since NaN logits still give some accuracy,
    the best checkpoint on ``val/acc`` could be one of them. Reading the loss back from the device every step
    would cost a host sync per step, so the loss is checked only on the steps the loggers write
    (``--trainer.log_every_n_steps``); between those, the weights are checked before each validation and in every
    checkpoint about to be saved (best, last, SIGTERM, SLURM requeue), so no non-finite state is ever written.

    Args:
        checkpoint_dir: The run's checkpoint folder, where the last good checkpoint is looked up.
    """

    def __init__(self, checkpoint_dir: Path) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)

    def last_good_checkpoint(self) -> Path | None:
        """``last.ckpt`` (what ``--ckpt_path last`` resumes), else the newest other checkpoint, else None.

        Every checkpoint the run folder holds is finite: this callback refuses to save any other.
        """
        last = self.checkpoint_dir / LAST_NAME
        if last.is_file():
            return last
        found = [p for p in self.checkpoint_dir.glob("*.ckpt") if p.is_file()]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def _stop(self, trainer: Trainer, pl_module: LightningModule, what: str) -> None:
        good = self.last_good_checkpoint()
        saved = f"the last good checkpoint is {good}" if good else "no checkpoint had been saved yet"
        lr = pl_module.hparams.get("lr")
        raise DivergedError(
            f"{what} step {max(trainer.global_step - 1, 0)}; {saved}. "
            f"Lower --model.lr{f' (it was {lr:g})' if lr is not None else ''}, lengthen --model.warmup_epochs or clip "
            "gradients (--trainer.gradient_clip_val), and start a new run."
        )

    def _agree(self, trainer: Trainer, finite: bool) -> bool:
        # Under DDP each rank has its own loss: all stop together, or one rank would wait in a collective forever.
        return trainer.strategy.reduce_boolean_decision(finite, all=True) if trainer.world_size > 1 else finite

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, Tensor) or not should_update_logs(trainer):
            return
        value = float(loss.detach())  # the one host sync, on logging steps only
        if not self._agree(trainer, math.isfinite(value)):
            self._stop(trainer, pl_module, f"the training loss became {value} at")

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # During fit, before val/acc (and the best checkpoint on it) is computed from diverged weights.
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if not self._agree(trainer, all_finite(weights(pl_module))):
            self._stop(trainer, pl_module, "the weights became nan or inf (the training diverged) by")

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # Called on every rank while the checkpoint is assembled, before any file is written. The ranks decide
        # together: their weights may differ (BatchNorm statistics of each rank's last batch), and a rank that
        # raised alone would leave the others waiting in the save's barrier.
        # The module's own tensors only: metric states such as val_acc_best start at -inf by design.
        if not self._agree(trainer, all_finite(weights(pl_module))):
            self._stop(trainer, pl_module, "the weights became nan or inf (the training diverged) by")
