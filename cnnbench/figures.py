"""Figures of runs: training curves, confusion matrix, a grid of test images with true and predicted labels.

matplotlib's object API (``Figure``, no pyplot): no global state, no display needed. matplotlib is imported
when the first figure is drawn, so a command that draws none does not spend the time loading it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class RunCurves(Protocol):
    """What a curve plot reads of a run (``cnnbench.report.runs.RunRecord`` has it)."""

    label: str
    steps_per_epoch: float

    def per_epoch(self, name: str) -> list[tuple[int, float]]: ...

    def per_step(self, name: str) -> list[tuple[int, float]]: ...


def _figure(**kwargs: object) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_curves(runs: Sequence[RunCurves], path: Path) -> Path:
    """Train (solid) and validation (dashed) loss and accuracy per epoch, and the LR per step, of every run."""
    fig = _figure(figsize=(15, 4.2), layout="constrained")
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        for name, ax, style in (
            ("train/loss", loss_ax, "-"),
            ("val/loss", loss_ax, "--"),
            ("train/acc", acc_ax, "-"),
            ("val/acc", acc_ax, "--"),
        ):
            points = run.per_epoch(name)
            if points:
                label = f"{run.label} {name.split('/')[0]}"
                ax.plot([e + 1 for e, _ in points], [v for _, v in points], style, color=color, label=label)
        steps = run.per_step("train/lr")
        if steps:
            lr_ax.plot([s / run.steps_per_epoch for s, _ in steps], [v for _, v in steps], color=color, label=run.label)
    for ax, title in ((loss_ax, "loss"), (acc_ax, "accuracy"), (lr_ax, "learning rate")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # an empty legend warns (a run too short to log a per-step LR)
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return path


def confusion_matrix(labels: Tensor, preds: Tensor, num_classes: int) -> Tensor:
    """Counts, rows = true class, columns = predicted class."""
    return torch.bincount(labels * num_classes + preds, minlength=num_classes**2).view(num_classes, num_classes)


def write_confusion_csv(matrix: Tensor, classes: Sequence[str], path: Path) -> Path:
    """The counts as CSV: one row per true class, one column per predicted class."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *classes])
        writer.writerows([name, *row] for name, row in zip(classes, matrix.tolist(), strict=True))
    return path


def save_confusion_matrix(matrix: Tensor, classes: Sequence[str], path: Path, title: str = "") -> Path:
    n = len(classes)
    fig = _figure(figsize=(1.0 + 0.62 * n, 0.6 + 0.55 * n), layout="constrained")
    ax = fig.subplots()
    rates = matrix.double() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            white = rates[i, j] > 0.5
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7, color="white" if white else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = matrix.diag().sum().item() / max(1, matrix.sum().item())
    ax.set_title(f"{title} accuracy {accuracy:.2%}".strip())
    fig.savefig(path, dpi=110)
    return path


def save_prediction_grid(
    images: Tensor, labels: Tensor, preds: Tensor, classes: Sequence[str], path: Path, columns: int = 8
) -> Path:
    """Images (N, C, H, W in [0, 1]) titled ``true / predicted``; wrong predictions in red with a red frame."""
    rows = -(-len(images) // columns)
    fig = _figure(figsize=(1.6 * columns, 1.75 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(images):
            ax.axis("off")
            continue
        image = images[k].clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        wrong = bool(labels[k] != preds[k])
        ax.set_title(f"{classes[labels[k]]}\n/ {classes[preds[k]]}", fontsize=7, color="red" if wrong else "black")
        for spine in ax.spines.values():
            spine.set(color="red" if wrong else "0.7", linewidth=2.5 if wrong else 0.5)
    fig.savefig(path, dpi=110)
    return path
