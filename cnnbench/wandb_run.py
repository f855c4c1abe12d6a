"""How cnnbench's runs appear in W&B: grouped as the report groups them, by subcommand, with plain config names.

- group: the report's seed group (``cnnbench.report.groups.group_key``): the seeds of one recipe are one W&B group,
  so W&B's grouped mean ± std is the report's row.
- job_type: the subcommand. ``fit`` is the run (its id from the run folder); ``test``, ``validate`` and ``predict``
  of its checkpoint are runs of their own in the same group (id ``<fit id>-<their folder>``), and ``test``
  also writes its ``test/*`` numbers into the fit run's summary (resumed by id: online at once, offline as files
  that ``wandb sync`` uploads into that same run).
- config: ``model.lr``, ``data.batch_size``, ``seed_everything``: the resolved config without ``init_args`` levels.
- the logger: ``--wandb.*`` (``WandbOptions``) and ``wandb_logger``: its name, tags and the id a resume continues.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor


def plain_config(config: Any) -> Any:
    """``{"model": {"class_path": C, "init_args": {"lr": 0.1}}}`` -> ``{"model": {"class_path": C, "lr": 0.1}}``.

    W&B shows nested keys as dotted names; without the ``init_args`` level they are the CLI's own (``model.lr``).
    """
    if isinstance(config, Mapping):
        plain = {str(k): plain_config(v) for k, v in config.items() if k != "init_args"}
        if isinstance(config.get("init_args"), Mapping):
            plain.update(plain_config(config["init_args"]))
        return plain
    if isinstance(config, (list, tuple)):
        return [plain_config(v) for v in config]
    return config


def fit_run_id(run_dir: Path) -> str:
    """The W&B id of the ``fit`` run of a run folder: derived from the folder, so a resumed run continues it."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{run_dir.parent.name}-{run_dir.name}")


def run_id(run_dir: Path, log_dir: Path) -> str:
    """``fit``'s id, or for a command that logs into a folder inside the run (``test-<time>``) an id of its own."""
    return fit_run_id(run_dir) if log_dir == run_dir else f"{fit_run_id(run_dir)}-{log_dir.name}"


class FitRunSummary(Callback):
    """After ``test``: its ``test/*`` numbers into the summary of the fit run it tested (same W&B id, resumed)."""

    def __init__(self, logger: WandbLogger, run_dir: Path, group: str) -> None:
        self.logger, self.run_dir, self.group = logger, run_dir, group

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {k: v.item() if isinstance(v, Tensor) else v for k, v in trainer.callback_metrics.items()}
        metrics = {k: v for k, v in metrics.items() if k.startswith("test/")}
        if not metrics:
            return
        import wandb

        test_run = self.logger.experiment  # the fit run is in the same project and entity as this test's
        fit = wandb.init(
            id=fit_run_id(self.run_dir), resume="allow", project=test_run.project, entity=test_run.entity or None,
            group=self.group, job_type="fit", dir=str(self.run_dir), reinit="create_new",
        )  # fmt: skip
        fit.summary.update({**metrics, "test/run": test_run.id})
        fit.finish()


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
    options: WandbOptions,
    run_dir: Path,
    model: str,
    dataset: str,
    family: str | None,
    configs: Sequence[str] = (),
    log_dir: Path | None = None,
    group: str | None = None,
    job_type: str = "fit",
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
