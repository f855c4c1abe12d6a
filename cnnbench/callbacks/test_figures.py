"""At the end of ``test``: the confusion matrix and a grid of test images with true and predicted labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from cnnbench.figures import (
    confusion_matrix,
    save_confusion_matrix,
    save_prediction_grid,
    write_confusion_csv,
)
from cnnbench.loggers import log_test_figures
from cnnbench.metrics import gather_on_rank_zero


class TestFigures(Callback):
    """Saves ``confusion_matrix.csv``/``.png`` and ``predictions.png`` in the test folder and shows them in the loggers.

    Args:
        out_dir: The folder of this ``test`` (``<run>/test-<time>/``).
        classes: Class names.
        grid_images: How many of the first test images the prediction grid shows.
    """

    def __init__(self, out_dir: Path, classes: Sequence[str], grid_images: int = 40) -> None:
        self.out_dir, self.classes, self.grid_images = Path(out_dir), list(classes), grid_images
        self._labels: list[torch.Tensor] = []
        self._preds: list[torch.Tensor] = []
        self._images: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._labels, self._preds, self._images = [], [], []

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        # Kept on the device: a copy to the host here would wait for the batch's forward pass (three syncs a batch);
        # the epoch's predictions are copied once, at the end.
        images, labels = batch
        self._labels.append(labels.detach())
        self._preds.append(outputs["preds"].detach())
        if sum(len(x) for x in self._images) < self.grid_images:
            self._images.append(images[: self.grid_images].detach().clone())

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Under DDP each rank tested its share of the split (EvalShardSampler): rank 0 draws from all of them, and
        # its own images (first in the gathered order) make the prediction grid.
        gathered = gather_on_rank_zero(torch.cat(self._labels).cpu(), torch.cat(self._preds).cpu())
        if gathered is None:
            return
        labels, preds = gathered
        matrix = confusion_matrix(labels, preds, len(self.classes))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        csv_path = write_confusion_csv(matrix, self.classes, self.out_dir / "confusion_matrix.csv")
        n = self.grid_images
        # A data module of the user's that says nothing of its normalization is shown as it is.
        stats = getattr(trainer.datamodule, "normalization", lambda: ([0.0], [1.0]))()
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in stats)
        shown = torch.cat(self._images)[:n].float().cpu() * std + mean  # back to [0, 1] for display
        figures = {
            "confusion_matrix": save_confusion_matrix(
                matrix, self.classes, self.out_dir / "confusion_matrix.png", pl_module.model_name
            ),
            "predictions": save_prediction_grid(
                shown, labels[:n], preds[:n], self.classes, self.out_dir / "predictions.png"
            ),
        }
        log_test_figures(trainer.loggers, figures, labels.tolist(), preds.tolist(), self.classes)
        print(f"cnnbench: wrote {csv_path}, {figures['confusion_matrix']}, {figures['predictions']}", flush=True)
