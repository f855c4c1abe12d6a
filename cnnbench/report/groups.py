"""Runs that differ only in their seed, as one row: mean ± std and a 95% confidence interval over the seeds.

The runs of one dataset must have been trained and validated on the same data (``environment.json``): the same
files and the same validation split. Otherwise their numbers are not comparable and ``report`` refuses them.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnbench.data.datasets import DATASETS
from cnnbench.errors import CnnbenchError
from cnnbench.models.registry import model_name
from cnnbench.report.compute import eval_pflops
from cnnbench.report.runs import RunRecord, fmt
from cnnbench.report.stats import mean_std_ci
from cnnbench.runs import dataset_name

# Options that name where or under which seed a run ran, not what it trained: runs differing only here are repeats.
NOT_THE_RECIPE = (("seed_everything",), ("run_name",), ("ckpt_path",), ("config",), ("trainer", "default_root_dir"),
                  ("wandb", "tags"), ("data", "init_args", "data_dir"), ("data", "data_dir"))  # fmt: skip
GROUP_COLUMNS = [
    "group", "model", "dataset", "n", "best val acc", "val 95% CI", "test acc", "test 95% CI", "params", "MFLOPs",
    "s/epoch", "train s to best", "train PFLOPs to best", "eval PFLOPs", "PFLOPs (train + eval)", "val acc / GFLOP",
    "data",
]  # fmt: skip


def is_run_folder(path: Path) -> bool:
    return all((path / name).is_file() for name in ("config.yaml", "hparams.yaml", "metrics.csv"))


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run folders given, and those below folders given (a study folder, ``checkpoints/``), sorted, each once."""
    found: list[Path] = []
    for path in map(Path, paths):
        if is_run_folder(path):
            found.append(path)
            continue
        below = sorted(p.parent for p in path.rglob("metrics.csv") if is_run_folder(p.parent))
        below = [p for p in below if not is_run_folder(p.parent)]  # test-*/ folders inside a run are not runs
        if not below:
            missing = [n for n in ("config.yaml", "hparams.yaml", "metrics.csv") if not (path / n).is_file()]
            raise CnnbenchError(f"{path} is not a cnnbench run folder (missing {', '.join(missing)}) "
                                "and holds none")  # fmt: skip
        found += below
    return list(dict.fromkeys(found))


def recipe_key(run: RunRecord | dict) -> str:
    """The run's config without the options that do not change what it trains (seed, folders, tags)."""
    config = json.loads(json.dumps(run.config if isinstance(run, RunRecord) else run, default=str))
    for path in NOT_THE_RECIPE:
        node = config
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return json.dumps(config, sort_keys=True)


def group_key(config: dict) -> str:
    """The short name of a run's seed group: ``<dataset>-<model>-<hash of its recipe_key>``.

    The report's groups and the W&B group of every run (``fit``, its ``test``s, sweep trials) are this key, so one
    recipe's seeds are one group in both.
    """
    digest = hashlib.sha256(recipe_key(config).encode()).hexdigest()[:10]
    model = config["model"]
    return f"{dataset_name(config['data'])}-{model_name(model['class_path'], model.get('init_args'))}-{digest}"


def run_group(run_dir: Path, config: Mapping[str, Any]) -> str:
    """The report's group of the run: from the ``config.yaml`` the run's fit wrote (what the report reads), else
    from this command's config (a first ``fit``; a ``test`` of a checkpoint outside any run folder)."""
    saved = run_dir / "config.yaml"
    return group_key(yaml.safe_load(saved.read_text()) if saved.is_file() else dict(config))


def data_id(run: RunRecord) -> tuple[str, str] | None:
    """(data files' checksum, validation split's checksum) of a run, None when it recorded none."""
    data = run.recorded_data
    if "files_sha256" not in data:
        return None
    return data["files_sha256"], data.get("val_split_sha256", "")


def check_same_data(runs: Sequence[RunRecord], allow: bool) -> dict[Path, str]:
    """Refuse (or, with ``allow``, label) runs of one dataset trained on different files or validation splits.

    Returns a short label of each run's data (``A``, ``B``, ...; ``?`` without environment.json).
    """
    labels: dict[Path, str] = {}
    by_dataset: dict[str, dict[tuple[str, str], list[Path]]] = {}
    for run in runs:
        ident = data_id(run)
        if ident is None:
            labels[run.path] = "?"
            continue
        by_dataset.setdefault(run.dataset, {}).setdefault(ident, []).append(run.path)
    for dataset, kinds in by_dataset.items():
        if len(kinds) > 1 and not allow:
            listing = "; ".join(f"{', '.join(map(str, paths))}" for paths in kinds.values())
            raise CnnbenchError(
                f"runs on {dataset} used different data files or validation splits ({listing}); their accuracies "
                "are not comparable. Compare runs of one split, or pass --allow-mixed-data to mark them."
            )
        for k, paths in enumerate(kinds.values()):
            labels.update({p: chr(ord("A") + k) for p in paths})
    return labels


def to_best(run: RunRecord, mflops: float) -> tuple[float | None, float | None]:
    """Training seconds and training PFLOPs (3x the forward FLOPs per image seen) up to the best validation epoch,
    or for a run without validation (``--data.val_size 0``) up to its last epoch: its final state is its model.

    The images per epoch come from environment.json; without it the PFLOPs are unknown. A last epoch cut by a step
    limit counts by its share of the steps (``RunRecord.epochs_through``).
    """
    accs, ends = run.per_epoch("val/acc"), run.per_epoch("train/loss")
    if not accs and not ends:
        return None, None
    best = max(accs, key=lambda ev: (ev[1], -ev[0]))[0] if accs else ends[-1][0]
    seconds = [s for e, s in run.per_epoch("train/epoch_s") if e <= best]
    images = run.recorded_data.get("train_images")
    pflops = 3 * mflops * 1e6 * images * run.epochs_through(best) / 1e15 if images else None
    return (sum(seconds) if seconds else None), pflops


def evaluation_pflops(run: RunRecord, mflops: float) -> float | None:
    """Evaluation PFLOPs up to the best epoch (as ``to_best``): each validation of the validation split, and the
    latest ``cnnbench test`` of the official test split if the run has one, with that test's TTA options; every TTA
    pass counted (``report.compute``)."""
    accs, ends = run.per_epoch("val/acc"), run.per_epoch("train/loss")
    if not accs and not ends:
        return None
    best = max(accs, key=lambda ev: (ev[1], -ev[0]))[0] if accs else ends[-1][0]
    options, data = run.data_options, run.recorded_data
    # Runs recorded before environment.json counted evaluation images: the configured and the official sizes.
    val_images = data.get("val_images", options.get("val_size", 5000))
    val_epochs = sum(1 for epoch, _ in accs if epoch <= best)
    validation = eval_pflops(run.hparams, mflops, options.get("batch_size", 128), val_images, val_epochs, 0)
    if run.latest_test is None:
        return validation
    test_hparams, test_batch_size = run.test_options  # the test's own TTA options, which may differ from the fit's
    test_images = data.get("test_images", DATASETS[run.dataset].test_size)
    return validation + eval_pflops(test_hparams, mflops, test_batch_size, 0, 0, test_images)


@dataclass
class Group:
    runs: list[RunRecord]
    data: str
    name: str = ""  # group_key of its runs (with its data label when one key spans several data)

    def row(self) -> list[str]:
        first = self.runs[0]
        params, mflops = first.size()
        val = mean_std_ci([100 * r.best_val_acc for r in self.runs if r.best_val_acc is not None])
        test = mean_std_ci([100 * r.test_acc for r in self.runs if r.test_acc is not None])
        best = [to_best(r, mflops) for r in self.runs]
        seconds = [s for s, _ in best if s is not None]
        pflops = [p for _, p in best if p is not None]
        evals = [evaluation_pflops(r, mflops) for r in self.runs]
        totals = [t + e for (_, t), e in zip(best, evals, strict=True) if t is not None and e is not None]
        evals = [e for e in evals if e is not None]
        per_epoch = [r.s_per_epoch for r in self.runs if r.s_per_epoch is not None]
        return [
            self.name, first.model, first.dataset, str(len(self.runs)), _pm(val), _ci(val), _pm(test), _ci(test),
            f"{params:,}", f"{mflops:.1f}", fmt(statistics.fmean(per_epoch) if per_epoch else None, ".2f"),
            fmt(statistics.fmean(seconds) if seconds else None, ".1f"),
            fmt(statistics.fmean(pflops) if pflops else None, ".3g"),
            fmt(statistics.fmean(evals) if evals else None, ".3g"),
            fmt(statistics.fmean(totals) if totals else None, ".3g"),
            fmt(val and val[0] / (mflops / 1000), ".2f"), self.data,
        ]  # fmt: skip


def _pm(stats: tuple[float, float, float] | None) -> str:
    if stats is None:
        return ""
    return f"{stats[0]:.2f}" if math.isnan(stats[1]) else f"{stats[0]:.2f} ± {stats[1]:.2f}"


def _ci(stats: tuple[float, float, float] | None) -> str:
    if stats is None or math.isnan(stats[2]):
        return ""
    return f"[{stats[0] - stats[2]:.2f}, {stats[0] + stats[2]:.2f}]"


def group_runs(runs: Sequence[RunRecord], labels: dict[Path, str]) -> list[Group]:
    """Runs with the same recipe (``group_key``) and data, in the order of their first run."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault((group_key(run.config), labels.get(run.path, "?")), []).append(run)
    keys = [key for key, _ in groups]
    return [Group(members, data, key if keys.count(key) == 1 else f"{key}@{data}")
            for (key, data), members in groups.items()]  # fmt: skip


COMPUTE_LEGEND = (
    "PFLOPs as the 2025 CIFAR-10 records count them: training at 3x the forward FLOPs per training image seen, "
    "to the best epoch; evaluation at the forward FLOPs of every pass run, test-time augmentation included "
    "(each validation to the best epoch, and the test)."
)


def markdown(rows: list[list[str]]) -> str:
    align = ["---" if c in ("group", "model", "dataset", "data") else "---:" for c in GROUP_COLUMNS]
    lines = ["| " + " | ".join(GROUP_COLUMNS) + " |", "|" + "|".join(align) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows), "", COMPUTE_LEGEND])


def save_group_curves(groups: Sequence[Group], path: Path) -> Path:
    """Validation accuracy and loss per epoch of each group: the mean over its runs, a band of ± one std."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    # "model dataset" names a group unless two recipes of one model share it: then the group column's name does.
    names = [f"{group.runs[0].model} {group.runs[0].dataset}" for group in groups]
    names = [group.name if names.count(name) > 1 else name for group, name in zip(groups, names, strict=True)]
    for i, group in enumerate(groups):
        for ax, name in zip(axes, ("val/acc", "val/loss"), strict=True):
            per_run = [dict(r.per_epoch(name)) for r in group.runs]
            epochs = sorted(set().union(*per_run))
            if not epochs:
                continue
            points = [[run[e] for run in per_run if e in run] for e in epochs]
            mean = [statistics.fmean(p) for p in points]
            std = [statistics.stdev(p) if len(p) > 1 else 0.0 for p in points]
            x = [e + 1 for e in epochs]
            label = f"{names[i]} (n={len(group.runs)})"
            ax.plot(x, mean, color=f"C{i % 10}", label=label)
            ax.fill_between(x, [m - s for m, s in zip(mean, std, strict=True)],
                            [m + s for m, s in zip(mean, std, strict=True)], color=f"C{i % 10}", alpha=0.2)  # fmt: skip
    for ax, title in zip(axes, ("val accuracy (mean ± std)", "val loss (mean ± std)"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    return path
