"""The CLI as the end-to-end tests run it (in process), arguments of a tiny run, readers of what a run wrote.

The tests reach the CLI through this module only.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from cnnbench.cli import CnnbenchCLI, main

__all__ = [
    "LR",
    "STEPS_PER_EPOCH",
    "CnnbenchCLI",
    "base_args",
    "column",
    "expected_lr",
    "main",
    "read_csv",
    "read_metrics",
]

STEPS_PER_EPOCH = 5  # 100 train images - 20 validation, batch 16
LR = 0.05


def expected_lr(step: int, total_steps: int) -> float:
    """The LR of optimizer step ``step`` (0-based) under the defaults, written out apart from cnnbench.optim: one
    warmup epoch rising linearly to LR (reached at its last step), then a cosine from LR to 0 over the rest."""
    warmup = STEPS_PER_EPOCH
    if step < warmup:
        return LR * (step + 1) / warmup
    return LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total_steps - warmup)))


def base_args(data_dir: Path, root: Path, *extra: str) -> list[str]:
    return [
        "--model=simple_cnn",
        f"--model.lr={LR}",
        f"--data.data_dir={data_dir}",
        "--data.val_size=20",
        "--data.batch_size=16",
        "--data.num_workers=0",
        "--data.download=false",
        f"--trainer.default_root_dir={root}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=1",
        "--trainer.accelerator=cpu",
        *extra,
    ]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], name: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]
