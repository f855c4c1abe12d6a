"""No metrics.csv row lost to a kill just after a checkpoint: each checkpoint carries the row logged after it.

Lightning writes ``last.ckpt`` in the training hooks and logs that step's (or epoch's) metrics after them; a SIGKILL in
between leaves a checkpoint whose metrics row never reached the file, and the resumed run starts past it. This
callback stores that pending row in every checkpoint written during training, and a run resumed from one appends the
row to ``metrics.csv`` when the file lacks it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from cnnbench.compat import pending_train_row


class PendingMetricsRow(Callback):
    """Carries the training row logged after a checkpoint, and writes it on resume if ``metrics.csv`` lacks it."""

    def __init__(self, metrics_file: Path) -> None:
        self.metrics_file = Path(metrics_file)
        self._restored: tuple[int, dict[str, Any]] | None = None

    @property
    def state_key(self) -> str:
        return "PendingMetricsRow"

    def state_dict(self) -> dict[str, Any]:
        pending = pending_train_row(self._trainer) if getattr(self, "_trainer", None) else None
        return {"step": pending[0], "row": pending[1]} if pending else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = (int(state_dict["step"]), dict(state_dict["row"])) if state_dict.get("row") else None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer  # state_dict() gets no trainer

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._restored is None or not trainer.is_global_zero:
            return
        step, row = self._restored
        self._restored = None
        keys, rows = _read(self.metrics_file)
        if any(r.get("step") == str(step) and all(r.get(k) not in (None, "") for k in row) for r in rows):
            return  # the killed run wrote it after all
        header = sorted(set(keys) | set(row) | {"step"})
        rows.append({**row, "step": step})
        rows.sort(key=lambda r: int(r["step"]))  # stable: rows of one step keep their order
        with open(self.metrics_file, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)


def _read(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    if not path.is_file():
        return [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    return list(reader.fieldnames or []), rows
