"""How cnnbench's runs appear in W&B: grouped as the report groups them, by subcommand, with plain config names.

- group: the report's seed group (``cnnbench.report.groups.group_key``): the seeds of one recipe are one W&B group,
  so W&B's grouped mean ± std is the report's row.
- job_type: the subcommand. ``fit`` is the run (its id from the run folder); ``test``, ``validate`` and ``predict``
  of its checkpoint are runs of their own in the same group (id ``<fit id>-<their folder>``), and ``test``
  also writes its ``test/*`` numbers into the fit run's summary (resumed by id: online at once, offline as files
  that ``wandb sync`` uploads into that same run).
- config: ``model.lr``, ``data.batch_size``, ``seed_everything``: the resolved config without ``init_args`` levels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
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
