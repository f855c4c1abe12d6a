"""A CSVLogger whose metrics.csv survives a resume: one continuous history per run folder."""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class ResumableExperimentWriter(ExperimentWriter):
    """Appends to an existing ``metrics.csv`` (Lightning's writer deletes it on start).

    Rows that the interrupted run logged after its checkpoint would be logged again by the resumed run,
    so the first step logged now drops every existing row at or after that step.
    """

    def __init__(self, log_dir: str) -> None:  # not super().__init__: that deletes metrics.csv
        self.metrics: list[dict[str, float]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self._fs = get_filesystem(log_dir)
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self._fs.makedirs(log_dir, exist_ok=True)
        self._first_step: int | None = None

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self._first_step is None and step is not None:
            self._first_step = step
            self._drop_rows_from(step)
        super().log_metrics(metrics_dict, step)

    def _drop_rows_from(self, step: int) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            self.metrics_keys = sorted(reader.fieldnames or [])
        kept = [row for row in rows if int(row["step"]) < step]
        if len(kept) < len(rows):
            with self._fs.open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)


class RunCSVLogger(CSVLogger):
    """CSVLogger writing ``metrics.csv`` straight into a run folder and continuing it on resume."""

    @property
    def experiment(self) -> ResumableExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ResumableExperimentWriter(log_dir=self.log_dir)
        return self._experiment
