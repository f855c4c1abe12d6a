"""``metrics.csv`` and ``hparams.yaml`` of a run, written straight in its run folder (every command logs here)."""

from __future__ import annotations

import csv
from argparse import Namespace
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor


class RunCSVLogger(Logger):
    """``metrics.csv`` and ``hparams.yaml`` straight in a run folder; one continuous history across resumes.

    Lightning's CSVLogger deletes an existing ``metrics.csv`` on start. Here a resumed run appends, and
    rows the interrupted run logged after its checkpoint (they are logged again) are dropped first: the
    first step logged drops every existing row at or after it.
    """

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self._log_dir = Path(log_dir)
        self._rows: list[dict[str, Any]] = []
        self._keys: list[str] | None = None  # the file's header, read on the first write
        self._first_step: int | None = None
        self._hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self._log_dir)

    @property
    def log_dir(self) -> str:
        return str(self._log_dir)

    @property
    def metrics_file(self) -> Path:
        return self._log_dir / "metrics.csv"

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        self._hparams.update(vars(params) if isinstance(params, Namespace) else params)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        (self._log_dir / "hparams.yaml").write_text(yaml.safe_dump(_plain(self._hparams), sort_keys=False))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._first_step is None and step is not None:
            self._first_step = step
            self._drop_rows_from(step)
        row = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}
        self._rows.append({**row, "step": step if step is not None else len(self._rows)})

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        if self._keys is None:  # this process's first write: the header of the file a resumed run left, if any
            self._keys = self._read()[0]
        keys = sorted(set(self._keys).union(*self._rows))
        if keys != self._keys and self.metrics_file.is_file():  # a new column: rewrite the file with it
            self._write(keys, self._read()[1], mode="w")
        self._write(keys, self._rows, mode="a" if self.metrics_file.is_file() else "w")
        self._keys, self._rows = keys, []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.metrics_file.is_file():
            return [], []
        with open(self.metrics_file, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        return list(reader.fieldnames or []), rows

    def _write(self, keys: list[str], rows: Sequence[Mapping[str, Any]], mode: str) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_file, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def _drop_rows_from(self, step: int) -> None:
        keys, rows = self._read()
        kept = [row for row in rows if int(row["step"]) < step]
        if len(kept) < len(rows):
            self._write(sorted(keys), kept, mode="w")


def _plain(value: Any) -> Any:
    """YAML-safe copy: containers kept, anything else that is not a scalar written as its string."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
