"""Callbacks the CLI adds to every run: checkpoints, config saving, prediction writing."""

from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import Callback

from cnnbench.callbacks.checkpoints import LatestCheckpoint, best_checkpoint
from cnnbench.callbacks.divergence import DivergenceGuard
from cnnbench.callbacks.environment import EnvironmentRecord
from cnnbench.callbacks.pending_row import PendingMetricsRow
from cnnbench.callbacks.predictions import PredictionCSVWriter
from cnnbench.callbacks.progress import RunProgressBar
from cnnbench.callbacks.rng import RNGStateCheckpoint
from cnnbench.callbacks.run_config import SaveRunConfig
from cnnbench.callbacks.summary import EmptyFolderCleanup, FitSummary
from cnnbench.callbacks.test_figures import TestFigures
from cnnbench.callbacks.throughput import EpochThroughput
from cnnbench.runs import CHECKPOINT_DIR, CheckpointOptions


def run_callbacks(
    subcommand: str,
    run_dir: Path,
    log_dir: Path,
    data: LightningDataModule,
    options: CheckpointOptions,
    model_size: dict[str, Any] | None = None,
) -> list[Callback]:
    """The callbacks cnnbench adds to the user's: checkpoints and the summary of ``fit``, the CSV of ``predict``,
    ``test`` figures. ``model_size`` (``name``, ``params``, ``mflops``) goes into ``environment.json``."""
    # A data module of the user's may name no classes: they are then numbered.
    classes = list(getattr(data, "classes", None) or map(str, range(data.num_classes)))
    if subcommand == "fit":
        checkpoint_dir = run_dir / CHECKPOINT_DIR
        return [
            EpochThroughput(),
            RNGStateCheckpoint(),
            DivergenceGuard(checkpoint_dir),  # before the checkpoints: a diverged state is never saved
            # Without validation (--data.val_size 0) nothing ranks the epochs: the last state stands for the best.
            *([best_checkpoint(checkpoint_dir, options.save_top_k)] if getattr(data, "validates", True) else []),
            LatestCheckpoint(checkpoint_dir, options.last_every_n_steps),
            PendingMetricsRow(log_dir / "metrics.csv"),
            FitSummary(run_dir),
            EnvironmentRecord(run_dir, model_size),
        ]
    cleanup = EmptyFolderCleanup(log_dir)
    if subcommand == "predict":
        return [cleanup, PredictionCSVWriter(log_dir / "predictions.csv", classes)]
    if subcommand == "test":
        return [cleanup, TestFigures(log_dir, classes)]
    return [cleanup]


__all__ = [
    "EmptyFolderCleanup",
    "EnvironmentRecord",
    "DivergenceGuard",
    "EpochThroughput",
    "FitSummary",
    "LatestCheckpoint",
    "PredictionCSVWriter",
    "RNGStateCheckpoint",
    "RunProgressBar",
    "SaveRunConfig",
    "TestFigures",
    "best_checkpoint",
    "run_callbacks",
]
