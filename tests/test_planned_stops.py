"""Planned stops mid-epoch (max_steps, max_time, trainer.should_stop), then a resume, give the uninterrupted run.

Issue 17: such a stop used to save ``last.ckpt`` at the cut epoch's end, whose loop state says the epoch was
processed, so ``--ckpt_path last`` went on with the next epoch and the rest of the cut one was never trained.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks import timer as lightning_timer

from tests.helpers.datasets import write_cifar10
from tests.helpers.runs import STEPS_PER_EPOCH, CnnbenchCLI, assert_same_tensors, base_args, column, read_metrics

EPOCHS = 3  # 15 steps
STOP_STEP = 7  # epoch 1, after 2 of its 5 batches
RUN_ARGS = (
    # Dropout, so that the torch RNG state at the resume matters; 16x16 inputs keep this AlexNet fast.
    "--model.dropout=0.5",
    "--data.image_size=16",
    "--data.augment=crop_flip",
    f"--trainer.max_epochs={EPOCHS}",
    "--trainer.deterministic=true",
    "--checkpoint.last_every_n_steps=0",  # no periodic saves: the only mid-epoch checkpoint is the stop's
    # The default warmup + cosine: every step's LR depends on the step count the scheduler restores, and the
    # schedule spans max_epochs, whatever stop (max_steps, max_time) the first session had.
    "--model.warmup_epochs=1",
)
DATA_PATHS = {"fast": ("--data.fast=true",), "per-image": ("--data.fast=false", "--data.num_workers=1")}


class StopAtStep(Callback):
    """Asks Lightning to stop, as a user's callback would, once ``step`` optimizer steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
        trainer.should_stop = trainer.should_stop or trainer.global_step == self.step


class FakeClock:
    """The clock of Lightning's Timer (``--trainer.max_time``) in the max_time test: it stands still but when moved."""

    now = 0.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


class AdvanceClockBeforeStep(Callback):
    """Moves FakeClock on before the batch of optimizer step ``step + 1``, so that a time limit runs out in that
    batch, however fast the machine trains."""

    def __init__(self, step: int, seconds: float) -> None:
        self.step, self.seconds = step, seconds

    def on_train_batch_start(self, trainer: Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            FakeClock.now += self.seconds


def callback_arg(cls: type[Callback], **init_args: object) -> str:
    class_path = f"{cls.__module__}.{cls.__qualname__}"
    return "--trainer.callbacks=" + json.dumps([{"class_path": class_path, "init_args": init_args}])


def fit(data_dir: Path, root: Path, data_path: str, *extra: str) -> CnnbenchCLI:
    args = base_args(data_dir, root, *RUN_ARGS, *DATA_PATHS[data_path], *extra)
    return CnnbenchCLI(args=["fit", "--model=alexnet_cifar7", *(a for a in args if a != "--model=simple_cnn")])


def load(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_cifar10(root)
    return root


@pytest.fixture(scope="module")
def uninterrupted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The run folder of the uninterrupted run on a data path, trained once per module."""
    done: dict[str, Path] = {}

    def run(data_path: str) -> Path:
        if data_path not in done:
            done[data_path] = fit(data_dir, tmp_path_factory.mktemp(f"straight-{data_path}"), data_path).run_dir
        return done[data_path]

    return run


def stop_and_resume(data_dir: Path, root: Path, data_path: str, *stop_args: str) -> tuple[dict, Path]:
    """Train with ``stop_args`` until the stop, then resume with ``--ckpt_path last`` without them."""
    stopped = fit(data_dir, root, data_path, *stop_args)
    at_stop = load(stopped.run_dir)
    resumed = fit(data_dir, root, data_path, "--ckpt_path=last")
    assert resumed.run_dir == stopped.run_dir  # continued the stopped run's folder
    return at_stop, resumed.run_dir


def assert_same_run(resumed_dir: Path, expected_dir: Path, stop_step: int) -> None:
    expected, actual = load(expected_dir), load(resumed_dir)
    assert actual["global_step"] == expected["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert actual["epoch"] == expected["epoch"]
    assert_same_tensors(expected["state_dict"], actual["state_dict"])
    resumed_rows, expected_rows = read_metrics(resumed_dir), read_metrics(expected_dir)
    for name in ("train/lr", "train/loss_step"):  # every step logged once, with the uninterrupted run's values
        assert column(resumed_rows, name) == column(expected_rows, name), name
    # The cut epoch's means cover all its batches, as the running sums were restored. (The stopped run logged the
    # means of the batches it had trained, at the step before the stop: Lightning ends the cut epoch with its hooks.)
    for name in ("train/loss", "train/acc", "val/acc"):
        logged = [(step, value) for step, value in column(resumed_rows, name) if step != stop_step - 1]
        assert logged == column(expected_rows, name), name


@pytest.mark.parametrize("data_path", DATA_PATHS)
def test_max_steps_stop_mid_epoch_resumes_at_the_next_batch(
    data_path: str,
    data_dir: Path,
    uninterrupted: Callable[[str], Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # rank_zero_info's messages
    at_stop, resumed_dir = stop_and_resume(data_dir, tmp_path, data_path, f"--trainer.max_steps={STOP_STEP}")
    assert at_stop["global_step"] == STOP_STEP
    assert at_stop["ImageDataModule"]["train_loader"] == {"epoch": 1, "batches": 2, "seed": 42}
    assert f"cnnbench: step limit reached at step {STOP_STEP}, saved to " in caplog.text
    assert_same_run(resumed_dir, uninterrupted(data_path), STOP_STEP)


def test_max_time_stop_mid_epoch_resumes_at_the_next_batch(
    data_dir: Path,
    uninterrupted: Callable[[str], Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The limit (2 s) runs out in the batch of step STOP_STEP: the Timer's clock moves 3 s before it, and only then.
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(FakeClock, "now", 0.0)
    monkeypatch.setattr(lightning_timer, "time", SimpleNamespace(monotonic=FakeClock.monotonic))
    advance = callback_arg(AdvanceClockBeforeStep, step=STOP_STEP - 1, seconds=3.0)
    at_stop, resumed_dir = stop_and_resume(data_dir, tmp_path, "fast", "--trainer.max_time=00:00:00:02", advance)
    assert at_stop["global_step"] == STOP_STEP
    assert at_stop["ImageDataModule"]["train_loader"] == {"epoch": 1, "batches": 2, "seed": 42}
    assert f"cnnbench: time limit reached at step {STOP_STEP}, saved to " in caplog.text
    assert_same_run(resumed_dir, uninterrupted("fast"), STOP_STEP)


def test_should_stop_from_a_callback_mid_epoch_resumes_at_the_next_batch(
    data_dir: Path, uninterrupted: Callable[[str], Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Lightning validates before it stops on should_stop; the checkpoint is taken before that validation.
    caplog.set_level(logging.INFO)
    stop = callback_arg(StopAtStep, step=STOP_STEP)
    at_stop, resumed_dir = stop_and_resume(data_dir, tmp_path, "fast", stop)
    assert at_stop["global_step"] == STOP_STEP
    assert at_stop["ImageDataModule"]["train_loader"] == {"epoch": 1, "batches": 2, "seed": 42}
    assert f"cnnbench: stop requested (trainer.should_stop) at step {STOP_STEP}" in caplog.text
    assert_same_run(resumed_dir, uninterrupted("fast"), STOP_STEP)


def test_a_limit_at_an_epoch_end_says_how_to_continue_and_a_finished_run_does_not(
    cifar_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    args = base_args(cifar_dir, tmp_path, f"--trainer.max_epochs={EPOCHS}")
    CnnbenchCLI(args=["fit", *args, f"--trainer.max_steps={STEPS_PER_EPOCH}"])
    assert f"cnnbench: step limit reached at step {STEPS_PER_EPOCH}, saved to " in caplog.text
    caplog.clear()
    resumed = CnnbenchCLI(args=["fit", *args, "--ckpt_path=last"])
    assert load(resumed.run_dir)["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert "resume with --ckpt_path last" not in caplog.text  # it ran to max_epochs: nothing left to continue
    caplog.clear()
    # A run whose length is its step count (max_steps alone: the schedule spans it) ends complete, mid-epoch too.
    steps_only = base_args(cifar_dir, tmp_path / "steps", "--trainer.max_epochs=-1")
    CnnbenchCLI(args=["fit", *steps_only, f"--trainer.max_steps={STEPS_PER_EPOCH + 2}"])
    assert "cnnbench: step limit reached" not in caplog.text


def test_early_stopping_stays_final_and_a_resume_without_it_trains_on(
    cifar_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # val/acc never improves by 1.0: EarlyStopping stops at the second validation, at the end of epoch 1.
    early_stopping = {"monitor": "val/acc", "mode": "max", "patience": 0, "min_delta": 1.0}
    args = base_args(cifar_dir, tmp_path, f"--trainer.max_epochs={EPOCHS}")
    stopped = CnnbenchCLI(args=["fit", *args, callback_arg(EarlyStopping, **early_stopping)])
    assert load(stopped.run_dir)["global_step"] == 2 * STEPS_PER_EPOCH
    assert "resume with --ckpt_path last" not in caplog.text  # no planned stop: nothing is printed
    # The README's way to train on anyway: resume without the callback (with it, it would stop again).
    resumed = CnnbenchCLI(args=["fit", *args, "--ckpt_path=last"])
    assert resumed.run_dir == stopped.run_dir
    assert load(resumed.run_dir)["global_step"] == EPOCHS * STEPS_PER_EPOCH
