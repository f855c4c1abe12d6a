"""Write ``predict`` results to a CSV file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter


class PredictionCSVWriter(BasePredictionWriter):
    """Writes one row per image: its index in the split, the predicted class and every class probability."""

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        super().__init__(write_interval="epoch")
        self.path = Path(path)
        self.classes = list(classes)

    def write_on_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule, predictions: Sequence[Any], batch_indices: Sequence[Any]
    ) -> None:
        if trainer.world_size > 1:
            raise NotImplementedError("writing predictions from several processes is not supported; use one device")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "pred", "pred_name", *(f"p_{c}" for c in self.classes)])
            index = 0
            for batch in predictions:
                for pred, probs in zip(batch["preds"].tolist(), batch["probs"].tolist(), strict=True):
                    writer.writerow([index, pred, self.classes[pred], *(f"{p:.6f}" for p in probs)])
                    index += 1
