"""The Lightning internals cnnbench relies on (cnnbench/compat.py): each test fails loudly if an upgrade changes one."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from torch import nn

from cnnbench.compat import (
    CheckpointOptionsHook,
    cluster_environment,
    pending_train_row,
    request_sigterm_stop,
    should_update_logs,
    skip_per_batch_sigterm_broadcast,
)
from cnnbench.errors import CheckpointNotFoundError


class _Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=2)


class _RecordLogSteps(Callback):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_train_batch_start(self, trainer: Trainer, *args: object) -> None:
        self.seen.append(should_update_logs(trainer))


def test_should_update_logs_follows_log_every_n_steps(tmp_path: Path) -> None:
    record = _RecordLogSteps()
    trainer = Trainer(
        max_epochs=1, log_every_n_steps=3, callbacks=[record], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(_Tiny())
    assert record.seen == [(step + 1) % 3 == 0 for step in range(6)]


def test_cluster_environment_is_the_detected_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(cluster_environment(Trainer(accelerator="cpu", logger=False)), LightningEnvironment)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    assert isinstance(cluster_environment(Trainer(accelerator="cpu", logger=False)), SLURMEnvironment)


def test_checkpoint_path_hook_runs_between_parsing_and_instantiation(tmp_path: Path) -> None:
    # LightningCLI.__init__ must call the method CheckpointOptionsHook overrides, after parsing and before the
    # classes are built: the checkpoint's model options are adopted there, so the config changes it makes count.
    class Adopting(CheckpointOptionsHook):
        seen: tuple[int, bool] | None = None

        def resolve_ckpt_path(self) -> None:
            Adopting.seen = (self.config.fit.trainer.max_epochs, hasattr(self, "trainer"))
            self.config.fit.trainer.max_epochs = 1  # as cnnbench replaces an option with the checkpoint's
            self.config.fit.ckpt_path = None

    args = [
        "fit", "--trainer.max_epochs=5", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={tmp_path / 'absent.ckpt'}",
    ]  # fmt: skip
    cli = Adopting(_Tiny, args=args)
    assert Adopting.seen == (5, False)  # parsed, nothing built yet
    assert cli.trainer.max_epochs == 1 and cli.trainer.current_epoch == 1  # built from the changed config

    class Refusing(CheckpointOptionsHook):
        def resolve_ckpt_path(self) -> None:
            raise CheckpointNotFoundError("vetted")

    with pytest.raises(CheckpointNotFoundError, match="vetted"):
        Refusing(_Tiny, args=["fit", "--ckpt_path=x.ckpt"])


def test_lightnings_per_batch_sigterm_broadcast_is_the_one_skipped() -> None:
    from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop

    # The training loop calls this method before every batch under DDP (a collective and an .item() each step).
    assert "self._broadcast_sigterm_tensor()" in inspect.getsource(_TrainingEpochLoop.advance)
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    loop = trainer.fit_loop.epoch_loop
    assert inspect.ismethod(loop._broadcast_sigterm_tensor)
    skip_per_batch_sigterm_broadcast(trainer)
    assert not inspect.ismethod(loop._broadcast_sigterm_tensor) and loop._broadcast_sigterm_tensor() is None


def test_the_sigterm_flag_is_lightnings() -> None:
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert not trainer.received_sigterm
    request_sigterm_stop(trainer)
    assert trainer.received_sigterm  # what Lightning's loops test before raising SIGTERMException


class _LogsEachWay(_Tiny):
    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.log("step_loss", loss, on_step=True, on_epoch=False)
        self.log("epoch_loss", loss, on_step=False, on_epoch=True)
        return loss


class _PendingVsLogged(Callback):
    """At each train batch end and epoch end, the row pending_train_row predicts; the loggers' rows are recorded."""

    def __init__(self) -> None:
        self.predicted: list[tuple[int, dict[str, float]]] = []

    def on_train_batch_end(self, trainer: Trainer, *args: object) -> None:
        if (row := pending_train_row(trainer)) is not None:
            self.predicted.append(row)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (row := pending_train_row(trainer)) is not None:
            self.predicted.append(row)


class _Rows(Logger):
    name, version = "rows", 0

    def log_hyperparams(self, *args: object, **kwargs: object) -> None:
        pass

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((step, dict(metrics)))


def test_pending_train_row_is_the_row_lightning_logs_next(tmp_path: Path) -> None:
    watcher, logger = _PendingVsLogged(), _Rows()
    trainer = Trainer(max_epochs=2, logger=logger, callbacks=[watcher], log_every_n_steps=2, accelerator="cpu",
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(_LogsEachWay())
    # 6 steps an epoch, logged every 2nd, and each epoch's end: 8 rows, each predicted in the hook before it
    assert len(logger.rows) == 8 and watcher.predicted == logger.rows
