"""The progress bar of cnnbench runs: Lightning's Rich bar without the logger version number."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar


class RunProgressBar(RichProgressBar):
    """Rich progress bar that shows the logged metrics only.

    Lightning adds ``v_num`` (the loggers' version); a cnnbench run is named by its folder, so the number says
    nothing (and with W&B it is the tail of a run id).
    """

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
