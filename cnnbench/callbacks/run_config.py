"""Save the resolved config of every run into its run folder, never aborting on an existing one."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback


class SaveRunConfig(SaveConfigCallback):
    """Writes ``config.yaml``; a resumed run adds ``config.resume-1.yaml``, ``-2``, ... beside it.

    Lightning's callback aborts when the file exists, which is exactly the case of a resumed run.
    """

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
