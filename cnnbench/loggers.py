"""Where runs log: ``metrics.csv`` in the run folder, plus any Lightning logger (``--trainer.logger``) and W&B.

Every logger writes inside the run folder, gets the resolved config, and shows the test figures where it
can show images. What is particular to W&B (names, tags, the id a resume continues, summaries, media)
is in this module only.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import json
import os
from argparse import Namespace
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import Tensor

from cnnbench.wandb_run import plain_config, run_id


class RunCSVLogger(Logger):
    """``metrics.csv`` and ``hparams.yaml`` straight in a run folder; one continuous history across resumes.

    Lightning's CSVLogger deletes an existing ``metrics.csv`` on start. Here a resumed run appends, and
    rows the interrupted run logged after its checkpoint (they are logged again) are dropped first: the
    first step logged drops every existing row at or after it.
    """

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self._log_dir = Path(log_dir)
        self._rows: list[dict[str, Any]] = []
        self._keys: list[str] | None = None  # the file's header, read on the first write
        self._first_step: int | None = None
        self._hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self._log_dir)

    @property
    def log_dir(self) -> str:
        return str(self._log_dir)

    @property
    def metrics_file(self) -> Path:
        return self._log_dir / "metrics.csv"

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        self._hparams.update(vars(params) if isinstance(params, Namespace) else params)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        (self._log_dir / "hparams.yaml").write_text(yaml.safe_dump(_plain(self._hparams), sort_keys=False))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._first_step is None and step is not None:
            self._first_step = step
            self._drop_rows_from(step)
        row = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}
        self._rows.append({**row, "step": step if step is not None else len(self._rows)})

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        if self._keys is None:  # this process's first write: the header of the file a resumed run left, if any
            self._keys = self._read()[0]
        keys = sorted(set(self._keys).union(*self._rows))
        if keys != self._keys and self.metrics_file.is_file():  # a new column: rewrite the file with it
            self._write(keys, self._read()[1], mode="w")
        self._write(keys, self._rows, mode="a" if self.metrics_file.is_file() else "w")
        self._keys, self._rows = keys, []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.metrics_file.is_file():
            return [], []
        with open(self.metrics_file, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        return list(reader.fieldnames or []), rows

    def _write(self, keys: list[str], rows: Sequence[Mapping[str, Any]], mode: str) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_file, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def _drop_rows_from(self, step: int) -> None:
        keys, rows = self._read()
        kept = [row for row in rows if int(row["step"]) < step]
        if len(kept) < len(rows):
            self._write(sorted(keys), kept, mode="w")


def _plain(value: Any) -> Any:
    """YAML-safe copy: containers kept, anything else that is not a scalar written as its string."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _logger_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module or "lightning.pytorch.loggers"), name)


def expand_logger_names(args: list[str]) -> list[str]:
    """Let ``--trainer.logger TensorBoardLogger`` parse although its ``save_dir`` is required: the run folder
    supplies it (see ``place_in_run_folder``), so the command line gives the class alone."""
    out: list[str] = []
    for i, arg in enumerate(args):
        option, eq, value = arg.partition("=")
        if eq and option in ("--trainer.logger", "--trainer.logger+"):
            out.append(f"{option}={_with_save_dir(value)}")
        elif i > 0 and args[i - 1] in ("--trainer.logger", "--trainer.logger+"):
            out.append(_with_save_dir(arg))
        else:
            out.append(arg)
    return out


def _with_save_dir(value: str) -> str:
    if value[:1] in "{[" or value.lower() in ("true", "false", "null", "none"):
        return value
    try:
        accepts = "save_dir" in inspect.signature(_logger_class(value)).parameters
    except (ImportError, AttributeError, ValueError):
        return value  # not a class we can see: the parser reports it
    return json.dumps({"class_path": value, "init_args": {"save_dir": "."}}) if accepts else value


def place_in_run_folder(logger_config: Any, log_dir: Path) -> Any:
    """Point a ``--trainer.logger`` entry (class_path + init_args) at the run folder before it is built.

    A logger with a ``save_dir`` writes into ``<log_dir>/<kind>/`` (``tensorboard``, ``mlflow``, ...); one that
    also takes ``name`` and ``version`` (TensorBoard) writes there directly, with no version subfolder, so a
    resumed run continues the same folder.
    """
    if not isinstance(logger_config, Namespace) or "class_path" not in logger_config:
        return logger_config
    name = str(logger_config.class_path).rpartition(".")[2]
    params = inspect.signature(_logger_class(str(logger_config.class_path))).parameters
    init_args = logger_config.get("init_args") or Namespace()
    if "save_dir" in params:
        kind = name.removesuffix("Logger").lower() or "logs"
        init_args["save_dir"] = str(log_dir / kind) if "name" not in params else str(log_dir)
        if "name" in params and "version" in params:
            init_args["name"], init_args["version"] = kind, ""
    logger_config["init_args"] = init_args
    return logger_config


@dataclass
class WandbOptions:
    """Weights & Biases logging (off unless enabled; set WANDB_MODE=offline to log without a server).

    Args:
        enabled: Log to W&B besides metrics.csv.
        project: W&B project.
        entity: W&B entity (user or team); None uses the default.
        tags: Extra tags of the run.
        log_model: Upload checkpoints as W&B artifacts (needs W&B online; ignored offline).
    """

    enabled: bool = False
    project: str = "cnnbench"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    log_model: bool = False


def wandb_logger(
    options: WandbOptions, run_dir: Path, model: str, dataset: str, family: str | None, configs: Sequence[str] = (),
    log_dir: Path | None = None, group: str | None = None, job_type: str = "fit",
) -> WandbLogger | None:
    """The run's W&B logger, or None when W&B is off.

    One W&B run per run folder: its id is derived from the folder, so a resumed run continues it; a ``test`` (any
    command logging into ``log_dir`` inside the run) is a run of its own (``cnnbench.wandb_run``). ``group`` is the
    report's seed group, ``job_type`` the subcommand. Tags: the model, its family (the model file: ``resnet``; None
    for a model outside the registry), the dataset and each recipe (``recipe:cifar10/resnet18``).
    """
    if not options.enabled:
        return None
    if os.environ.get("WANDB_MODE") == "disabled":
        rank_zero_info("cnnbench: W&B is enabled in the config but WANDB_MODE=disabled; logging to CSV only.")
        return None
    recipes = [f"recipe:{Path(c).parent.name}/{Path(c).stem}" for c in configs if Path(c).parent.name != "logger"]
    log_model = options.log_model and os.environ.get("WANDB_MODE", "online") not in ("offline", "dryrun")
    if options.log_model and not log_model:
        rank_zero_info("cnnbench: --wandb.log_model needs W&B online; checkpoints stay in the run folder only.")
    return WandbLogger(
        log_model=log_model,
        project=options.project,
        entity=options.entity,
        name=f"{model}-{dataset}-{run_dir.name.rsplit('-', 1)[-1]}" + ("" if job_type == "fit" else f"-{job_type}"),
        id=run_id(run_dir, log_dir or run_dir),
        resume="allow",
        save_dir=str(run_dir),
        group=group or dataset,
        job_type=job_type,
        tags=list(dict.fromkeys([model, *([family] if family else []), dataset, *recipes, *options.tags])),
    )


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
