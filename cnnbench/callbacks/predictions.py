"""Write ``predict`` results to a CSV file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter


class PredictionCSVWriter(BasePredictionWriter):
    """Writes one row per image: its file (or index in the test split), the top-k classes with their
    probabilities, and every class probability.

    Args:
        path: The CSV file.
        classes: Class names.
        top_k: How many of the most probable classes get their own columns.
    """

    def __init__(self, path: Path, classes: Sequence[str], top_k: int = 3) -> None:
        super().__init__(write_interval="epoch")
        self.path = Path(path)
        self.classes = list(classes)
        self.top_k = min(top_k, len(self.classes))

    def write_on_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule, predictions: Sequence[Any], batch_indices: Sequence[Any]
    ) -> None:
        if trainer.world_size > 1:
            raise NotImplementedError("writing predictions from several processes is not supported; use one device")
        names = getattr(trainer.datamodule, "predict_names", None) or []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            top = [c for k in range(1, self.top_k + 1) for c in (f"top{k}", f"top{k}_p")]
            writer.writerow(
                ["file" if names else "index", "pred", "pred_name", *top, *(f"p_{c}" for c in self.classes)]
            )
            index = 0
            for batch in predictions:
                probs = batch["probs"].float()
                top_p, top_i = probs.topk(self.top_k, dim=1)
                for pred, row, ps, ids in zip(
                    batch["preds"].tolist(), probs.tolist(), top_p.tolist(), top_i.tolist(), strict=True
                ):
                    ranked = [x for p, i in zip(ps, ids, strict=True) for x in (self.classes[i], f"{p:.6f}")]
                    key = names[index] if names else index
                    writer.writerow([key, pred, self.classes[pred], *ranked, *(f"{p:.6f}" for p in row)])
                    index += 1
        print(f"cnnbench: wrote {self.path} ({index} row{'s' if index != 1 else ''})", flush=True)
