"""``cnnbench report RUN_DIR...``: curves, comparison table, confusion matrix and prediction grid of runs."""

from __future__ import annotations

import argparse
import csv
import inspect
from pathlib import Path

import torch
from lightning.pytorch import Trainer

from cnnbench.data import ImageDataModule
from cnnbench.errors import CnnbenchError
from cnnbench.figures import (
    confusion_matrix,
    save_confusion_matrix,
    save_curves,
    save_prediction_grid,
    write_confusion_csv,
)
from cnnbench.models.checkpoint import load_classifier
from cnnbench.report import baseline, groups
from cnnbench.report.runs import RunRecord, fmt
from cnnbench.runs import best_or_last

COLUMNS = ["model", "dataset", "params", "MFLOPs", "epochs", "best val acc", "test acc", "s/epoch", "img/s", "run"]


def table_rows(runs: list[RunRecord]) -> list[list[str]]:
    rows = []
    for run in runs:
        params, mflops = run.size()
        rows.append([
            run.model, run.dataset, f"{params:,}", f"{mflops:.1f}", str(run.epochs),
            fmt(run.best_val_acc and 100 * run.best_val_acc, ".2f"), fmt(run.test_acc and 100 * run.test_acc, ".2f"),
            fmt(run.s_per_epoch, ".2f"), fmt(run.img_s, ",.0f"), str(run.path),
        ])  # fmt: skip
    return rows


def markdown(rows: list[list[str]]) -> str:
    align = ["---" if c in ("model", "dataset", "run") else "---:" for c in COLUMNS]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(align) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def test_figures(run: RunRecord, out: Path, data_dir: str | None) -> list[Path]:
    """Predict the test split with the run's best checkpoint; save its confusion matrix and prediction grid."""
    checkpoint = best_or_last(run.path)
    if checkpoint is None:
        raise CnnbenchError(f"{run.path} has no checkpoint to draw the test figures from")
    model, _ = load_classifier(checkpoint)  # first: a checkpoint that cannot be opened stops here
    known = inspect.signature(ImageDataModule).parameters
    data_options = {k: v for k, v in run.data_options.items() if k in known}
    data = ImageDataModule(**{**data_options, **({"data_dir": data_dir} if data_dir else {}), "download": False})
    data.prepare_data()
    data.setup("test")
    trainer = Trainer(
        accelerator="auto", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    batches = trainer.predict(model, datamodule=data)
    preds = torch.cat([b["preds"] for b in batches]).cpu()
    images, labels = data.splits["test"]
    matrix = confusion_matrix(labels, preds, data.num_classes)
    name, n = f"{run.model}-{run.path.name}", 40
    grid = out / f"{name}-predictions.png"
    return [
        write_confusion_csv(matrix, data.classes, out / f"{name}-confusion_matrix.csv"),
        save_confusion_matrix(matrix, data.classes, out / f"{name}-confusion_matrix.png", run.model),
        save_prediction_grid(images[:n].float() / 255, labels[:n], preds[:n], data.classes, grid),
    ]


def report_command(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cnnbench report", description=__doc__)
    parser.add_argument(
        "runs", nargs="+", type=Path, help="Run folders (<root>/<run_name>/<run_id>) or folders above them."
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="Folder for the PNG, Markdown and CSV files.")
    parser.add_argument(
        "--figures", type=Path, default=None, help="Run whose test confusion matrix and prediction grid to draw "
        "(default: the first run given; 'none' to skip).",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="Data folder for the test figures (default: the run's).")
    parser.add_argument(
        "--allow-mixed-data", action="store_true", help="Report runs of one dataset trained on different data "
        "files or validation splits (environment.json), each group marked with its data, instead of refusing.",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", default=None, help="Group (the 'group' column) to compare every other group with: the "
        "difference of their means and its 95%% interval, paired by seed when both ran the same seeds.",
    )  # fmt: skip
    options = parser.parse_args(args)
    runs = [RunRecord.read(path) for path in groups.find_runs(options.runs)]
    labels = groups.check_same_data(runs, options.allow_mixed_data)
    # A run short of its planned epochs (still training, or stopped) would pull its group's mean towards an early
    # epoch's accuracy: it stays in the per-run table and leaves the group statistics, named below them.
    short = [run for run in runs if not run.ended]
    seed_groups = groups.group_runs([run for run in runs if run.ended], labels)
    base = baseline.find_baseline(seed_groups, options.baseline) if options.baseline else None
    options.out.mkdir(parents=True, exist_ok=True)

    rows = table_rows(runs)
    (options.out / "comparison.md").write_text(markdown(rows) + "\n")
    with open(options.out / "comparison.csv", "w", newline="") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    written = [
        options.out / "comparison.md",
        options.out / "comparison.csv",
        save_curves(runs, options.out / "curves.png"),
    ]
    group_rows = [group.row() for group in seed_groups]
    (options.out / "groups.md").write_text(groups.markdown(group_rows) + "\n")
    with open(options.out / "groups.csv", "w", newline="") as f:
        csv.writer(f).writerows([groups.GROUP_COLUMNS, *group_rows])
    written += [options.out / "groups.md", options.out / "groups.csv"]
    written.append(groups.save_group_curves(seed_groups, options.out / "group_curves.png"))
    if base is not None:
        diff_rows = baseline.baseline_rows(seed_groups, base)
        (options.out / "baseline.md").write_text(baseline.markdown(diff_rows) + "\n")
        with open(options.out / "baseline.csv", "w", newline="") as f:
            csv.writer(f).writerows([baseline.COLUMNS, *diff_rows])
        written += [options.out / "baseline.md", options.out / "baseline.csv"]
    if str(options.figures) != "none":
        figures_run = RunRecord.read(options.figures) if options.figures else runs[0]
        written += test_figures(figures_run, options.out, options.data_dir)
    print(markdown(rows))
    print("\nruns that differ only in their seed (mean ± std, 95% CI of the mean):\n" + groups.markdown(group_rows))
    if short:
        print(
            "\nleft out of the groups, short of their planned epochs (still training, or stopped; `cnnbench fit "
            "--config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt` resumes one):\n"
            + "\n".join(f"  {run.path}: {run.epochs} of {run.planned_epochs} epochs" for run in short)
        )
    if base is not None:
        print(f"\ndifference to the baseline {base.name} (percentage points, 95% CI):\n" + baseline.markdown(diff_rows))
    print("\nwrote " + ", ".join(str(p) for p in written))
