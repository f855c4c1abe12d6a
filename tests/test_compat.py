"""The Lightning internals cnnbench relies on (cnnbench/compat.py): each test fails loudly if an upgrade changes one."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import Logger
from lightning.pytorch.trainer import call as lightning_call
from torch import nn

from cnnbench.compat import CheckpointOptionsHook, cluster_environment, pending_train_row, should_update_logs
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


def test_checkpoint_path_hook_runs_between_parsing_and_instantiation() -> None:
    # LightningCLI.__init__ must call the method CheckpointOptionsHook overrides, after parsing and before the
    # classes are built: the checkpoint's model options are adopted there.
    source = inspect.getsource(LightningCLI.__init__)
    order = [
        source.index(call)
        for call in ("self.parse_arguments(", "self._parse_ckpt_path()", "self.instantiate_classes()")
    ]
    assert order == sorted(order)
    assert "_parse_ckpt_path" in vars(CheckpointOptionsHook)

    class Refusing(CheckpointOptionsHook):
        def resolve_ckpt_path(self) -> None:
            raise CheckpointNotFoundError("vetted")

    with pytest.raises(CheckpointNotFoundError, match="vetted"):
        Refusing(_Tiny, args=["fit", "--ckpt_path=x.ckpt"])


class _CountBatchEnds(Callback):
    def __init__(self) -> None:
        self.batch_ends = 0

    def on_train_batch_end(self, *args: object) -> None:
        self.batch_ends += 1


def test_inherited_batch_hooks_are_skipped_and_overridden_ones_still_run(tmp_path: Path) -> None:
    """Lightning must skip a hook attribute that is None (else this fit fails calling None) and keep calling the
    hooks a callback overrides; skip_inherited_batch_hooks must touch nothing else."""
    from cnnbench.compat import BATCH_HOOKS, skip_inherited_batch_hooks

    counting, plain = _CountBatchEnds(), Callback()
    skip_inherited_batch_hooks([counting, plain])
    assert all(getattr(plain, name) is None for name in BATCH_HOOKS)
    assert callable(counting.on_train_batch_end) and counting.on_train_batch_start is None
    assert callable(plain.on_train_epoch_end) and callable(plain.on_save_checkpoint)  # not per-batch: kept
    trainer = Trainer(
        max_epochs=2, callbacks=[counting, plain], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(_Tiny())
    assert counting.batch_ends == 12
    # Lightning still dispatches through the callable check this relies on.
    assert "if callable(fn)" in inspect.getsource(lightning_call._call_callback_hooks)


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
