"""Where runs log: ``metrics.csv`` in the run folder, plus any Lightning logger (``--trainer.logger``) and W&B.

Every logger writes inside the run folder, gets the resolved config, and shows the test figures where it
can show images: this module hands them over. ``metrics.csv`` is ``cnnbench.csv_logger``'s; placing a
``--trainer.logger`` in the run folder is ``cnnbench.logger_args``'; W&B's logger (names, tags, the id a resume
continues, summaries) is ``cnnbench.wandb_run``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from cnnbench.csv_logger import RunCSVLogger
from cnnbench.wandb_run import plain_config


def log_run_config(loggers: Sequence[Logger], config: dict[str, Any], size: dict[str, Any]) -> None:
    """Give every logger but the CSV one (``config.yaml`` is beside it) the resolved config and the model's size."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            run.config.update({**plain_config(config), **size}, allow_val_change=True)
            run.summary.update(size)
            run.define_metric("trainer/global_step")
            run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
            run.define_metric("val/acc", summary="max")
            run.define_metric("val/loss", summary="min")
        elif not isinstance(logger, RunCSVLogger):
            logger.log_hyperparams({**_flatten(config), **size})


def log_environment(loggers: Sequence[Logger], record: dict[str, Any]) -> None:
    """Give every logger but the CSV one (``environment.json`` is beside it) the run's environment record."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.config.update({"environment": record}, allow_val_change=True)
        elif not isinstance(logger, RunCSVLogger):
            logger.log_hyperparams(_flatten({"environment": record}))


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"init_args": {"lr": 0.1}}}`` -> ``{"model/lr": 0.1}``: loggers that show parameters want
    flat keys (``init_args`` adds nothing a reader needs)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix if key == "init_args" else f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


def log_test_figures(
    loggers: Sequence[Logger], images: dict[str, Path], labels: Sequence[int], preds: Sequence[int], classes: list[str]
) -> None:
    """Show the test figures (PNG files by name) in every logger that can show images.

    W&B gets its interactive confusion matrix chart instead of the PNG; TensorBoard the images; MLflow the files.
    """
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            media: dict[str, Any] = {
                "test/confusion_matrix": wandb.plot.confusion_matrix(
                    y_true=list(labels), preds=list(preds), class_names=classes
                )
            }
            media.update({f"test/{n}": wandb.Image(str(p)) for n, p in images.items() if n != "confusion_matrix"})
            logger.experiment.log(media)
        elif isinstance(logger, TensorBoardLogger):
            import numpy as np
            from PIL import Image

            for name, path in images.items():
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                logger.experiment.add_image(f"test/{name}", pixels, dataformats="HWC")
        elif isinstance(logger, MLFlowLogger):
            for path in images.values():
                logger.experiment.log_artifact(logger.run_id, str(path))
