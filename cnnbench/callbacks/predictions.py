"""Write ``predict`` results to a CSV file."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from cnnbench.metrics import gather_on_rank_zero


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
        # One predict loader: Lightning unwraps its predictions from the per-loader list, not its batch indices.
        indices = torch.tensor([i for batch in batch_indices[0] for i in batch], dtype=torch.long)
        probs = torch.cat([torch.empty(0, len(self.classes))] + [batch["probs"].float().cpu() for batch in predictions])
        # Under DDP each rank predicted its share of the images (EvalShardSampler): rank 0 puts them back in order.
        gathered = gather_on_rank_zero(indices, probs)
        if gathered is None:
            return
        indices, probs = gathered
        order = indices.argsort()
        self.write(indices[order].tolist(), probs[order], getattr(trainer.datamodule, "predict_names", None) or [])

    def write(self, indices: Sequence[int], probs: torch.Tensor, names: Sequence[str]) -> None:
        """One row per image: ``names[i]`` (or the index ``i`` itself) for each of ``indices``, with its ``probs``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        top_p, top_i = probs.topk(self.top_k, dim=1)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            top = [c for k in range(1, self.top_k + 1) for c in (f"top{k}", f"top{k}_p")]
            writer.writerow(
                ["file" if names else "index", "pred", "pred_name", *top, *(f"p_{c}" for c in self.classes)]
            )
            preds = probs.argmax(dim=1).tolist()
            for index, pred, row, ps, ids in zip(
                indices, preds, probs.tolist(), top_p.tolist(), top_i.tolist(), strict=True
            ):
                ranked = [x for p, i in zip(ps, ids, strict=True) for x in (self.classes[i], f"{p:.6f}")]
                key = names[index] if names else index
                writer.writerow([key, pred, self.classes[pred], *ranked, *(f"{p:.6f}" for p in row)])
        print(f"cnnbench: wrote {self.path} ({len(indices)} row{'s' if len(indices) != 1 else ''})", flush=True)
