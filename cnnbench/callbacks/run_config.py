"""Save the resolved config of every run into its run folder (never aborting on an existing one) and to its loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback

from cnnbench.loggers import log_run_config


class SaveRunConfig(SaveConfigCallback):
    """Writes ``config.yaml``; a resumed run adds ``config.resume-1.yaml``, ``-2``, ... beside it.

    Lightning's callback aborts when the file exists, which is exactly the case of a resumed run. ``model_size``
    (``model/name``, ``model/params``, ``model/mflops``) goes to the loggers with the config.
    """

    def __init__(self, *args: Any, model_size: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_size = model_size or {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective call under DDP: every rank makes it, once
        if not self.already_saved and log_dir is not None:
            name = "config.yaml"
            if trainer.is_global_zero:
                log_dir, k = Path(log_dir), 0
                while (log_dir / name).exists():
                    k += 1
                    name = f"config.resume-{k}.yaml"
            self.config_filename = trainer.strategy.broadcast(name)
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Loggers other than the CSV one get the whole resolved config and the model's size."""
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        log_run_config(trainer.loggers, resolved, self.model_size)
