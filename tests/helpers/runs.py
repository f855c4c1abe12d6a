"""The CLI as the end-to-end tests run it (in process), arguments of a tiny run, readers of what a run wrote.

The tests reach the CLI through this module only.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import yaml

from cnnbench.__main__ import main
from cnnbench.cli import CnnbenchCLI
from tests.helpers.datasets import write_cifar10

__all__ = [
    "LR",
    "STEPS_PER_EPOCH",
    "TRAINED_EPOCHS",
    "CnnbenchCLI",
    "TrainedRun",
    "assert_same_tensors",
    "base_args",
    "column",
    "expected_lr",
    "fit_straight_and_resumed",
    "main",
    "read_csv",
    "read_metrics",
    "train_once",
]

STEPS_PER_EPOCH = 5  # 100 train images - 20 validation, batch 16
LR = 0.05
TRAINED_EPOCHS = 2  # the epochs of the session's trained run (conftest's ``fitted``)


class TrainedRun(NamedTuple):
    """A finished run: the data it trained on, its runs root, and its run folder (the only one under the root)."""

    data_dir: Path
    root: Path
    run_dir: Path


def train_once(folder: Path) -> TrainedRun:
    """A TRAINED_EPOCHS-epoch fit of simple_cnn with the defaults on tiny CIFAR-10 data written under ``folder``."""
    data_dir, root = folder / "data", folder / "runs"
    write_cifar10(data_dir)
    cli = CnnbenchCLI(args=["fit", *base_args(data_dir, root, f"--trainer.max_epochs={TRAINED_EPOCHS}")])
    return TrainedRun(data_dir, root, cli.run_dir)


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


def fit_straight_and_resumed(
    data_dir: Path, root: Path, options: Sequence[str], stop: str, end: Sequence[str] = ()
) -> tuple[CnnbenchCLI, CnnbenchCLI]:
    """The same tiny run twice: straight through to ``end``, and stopped by ``stop`` (``--trainer.max_steps=3``, say)
    then resumed from its last.ckpt to ``end``. The exact-resume tests compare what the two end with."""
    straight = CnnbenchCLI(args=["fit", *base_args(data_dir, root / "straight", *end, *options)])
    CnnbenchCLI(args=["fit", *base_args(data_dir, root / "resumed", stop, *options)])
    resumed = CnnbenchCLI(args=["fit", *base_args(data_dir, root / "resumed", *end, "--ckpt_path=last", *options)])
    return straight, resumed


def assert_same_tensors(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    """Bit-exact equality of two state dicts, naming the first tensor that differs."""
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, actual[name]), name


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], name: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]


def fake_run(
    folder: Path, lr: float, seed: int, best_val: float, epochs: int = 2, max_epochs: int | None = None
) -> None:
    """A run folder as ``fit`` leaves it, with just what the report reads (the recipe differs by its lr): ``epochs``
    validated epochs, the last at ``best_val`` percent, the first at half of it; ``max_epochs`` its plan, if any."""
    folder.mkdir(parents=True)
    config = {"seed_everything": seed, "model": {"class_path": "cnnbench.models.simple_cnn.SimpleCNN",
              "init_args": {"lr": lr}}, "data": {"class_path": "cnnbench.data.ImageDataModule",
              "init_args": {"dataset": "cifar10"}}}  # fmt: skip
    if max_epochs is not None:
        config["trainer"] = {"max_epochs": max_epochs}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "hparams.yaml").write_text(yaml.safe_dump({"in_channels": 3, "image_size": 32, "num_classes": 10}))
    last = epochs - 1
    rows = [{"epoch": e, "step": 5 * e + 4, "val/acc": best_val / (100 if e == last else 200)} for e in range(epochs)]
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "step", "val/acc"])
        writer.writeheader()
        writer.writerows(rows)
