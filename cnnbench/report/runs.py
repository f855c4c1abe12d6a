"""What a run folder says about its run, read only from the files the run wrote."""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from cnnbench.errors import CnnbenchError
from cnnbench.models.registry import model_name
from cnnbench.models.summary import describe
from cnnbench.runs import dataset_name


@dataclass
class RunRecord:
    """One run folder: its config, hyperparameters and metrics (a resumed run's metrics.csv is one history)."""

    path: Path
    config: dict
    hparams: dict
    rows: list[dict[str, str]] = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        path = Path(path)
        missing = [name for name in ("config.yaml", "hparams.yaml", "metrics.csv") if not (path / name).is_file()]
        if missing:
            raise CnnbenchError(f"{path} is not a cnnbench run folder (missing {', '.join(missing)})")
        with open(path / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return cls(
            path=path,
            config=yaml.safe_load((path / "config.yaml").read_text()),
            hparams=yaml.safe_load((path / "hparams.yaml").read_text()) or {},
            rows=rows,
        )

    @property
    def model(self) -> str:
        return model_name(self.config["model"]["class_path"], self.config["model"].get("init_args"))

    @property
    def dataset(self) -> str:
        return dataset_name(self.config["data"])

    @property
    def data_options(self) -> dict:
        """The data module's options (its ``init_args`` when the config names its class)."""
        return _data_options(self.config)

    @cached_property
    def environment(self) -> dict | None:
        """The run's ``environment.json`` (None for runs from before it), read once."""
        path = self.path / "environment.json"
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def recorded_data(self) -> dict:
        """What ``environment.json`` recorded about the data (files' checksum, split sizes); {} without it."""
        return (self.environment or {}).get("data") or {}

    @property
    def label(self) -> str:
        return f"{self.model} {self.path.parent.name}/{self.path.name}"

    def values(self, name: str) -> list[tuple[int, int, float]]:
        """(epoch, step, value) of every row that logged ``name``."""
        return [(int(r["epoch"]), int(r["step"]), float(r[name])) for r in self.rows if r.get(name)]

    def per_epoch(self, name: str) -> list[tuple[int, float]]:
        return [(epoch, value) for epoch, _, value in self.values(name)]

    def per_step(self, name: str) -> list[tuple[int, float]]:
        return [(step, value) for _, step, value in self.values(name)]

    @property
    def steps_per_epoch(self) -> float:
        ends = self.values("val/acc") or self.values("train/loss")
        return (ends[-1][1] + 1) / (ends[-1][0] + 1) if ends else 1.0

    @property
    def epochs(self) -> int:
        """Epochs trained (validated ones, or for a run without validation the ones that ended)."""
        return max(len(self.per_epoch("val/acc")), len(self.per_epoch("train/loss")))

    @property
    def planned_epochs(self) -> int | None:
        """The epochs the run was given, by its latest config (a resume may have extended it); None when its end is
        not a number of epochs (``--trainer.max_steps`` alone, or an early-stopping callback decides it)."""
        latest = max(self.path.glob("config.resume-*.yaml"), key=_resume_number, default=self.path / "config.yaml")
        config = yaml.safe_load(latest.read_text()) if latest.is_file() else self.config
        trainer = (config or {}).get("trainer") or {}
        if "EarlyStopping" in str(trainer.get("callbacks")):
            return None
        epochs = trainer.get("max_epochs")
        return epochs if isinstance(epochs, int) and epochs > 0 else None

    @property
    def ended(self) -> bool:
        """Whether the run trained all its planned epochs (or has no such plan); False for a run still going, one
        stopped by a kill, a limit, divergence or a sweep's pruner."""
        planned = self.planned_epochs
        return planned is None or self.epochs >= planned

    @property
    def best_val_acc(self) -> float | None:
        accs = [v for _, v in self.per_epoch("val/acc")]
        return max(accs) if accs else None

    @property
    def latest_test(self) -> Path | None:
        """The folder of the latest ``cnnbench test`` of this run that logged ``test/acc`` (``test-<time>/``)."""
        for folder in sorted(self.path.glob("test-*"), reverse=True):
            if _test_accs(folder):
                return folder
        return None

    @property
    def test_acc(self) -> float | None:
        """``test/acc`` of the latest ``cnnbench test`` of this run (they write ``test-<time>/metrics.csv``)."""
        folder = self.latest_test
        return _test_accs(folder)[-1] if folder else None

    @property
    def test_options(self) -> tuple[dict, int]:
        """(hyperparameters, batch size) of the latest test: a test may change the evaluation (its TTA options)."""
        folder = self.latest_test
        hparams = _read_yaml(folder / "hparams.yaml") if folder else None
        options = _data_options(_read_yaml(folder / "config.yaml") or {}) if folder else {}
        return hparams or self.hparams, options.get("batch_size") or self.data_options.get("batch_size", 128)

    @property
    def s_per_epoch(self) -> float | None:
        times = [v for _, v in self.per_epoch("train/epoch_s")]
        return statistics.median(times) if times else None

    @property
    def img_s(self) -> float | None:
        rates = [v for _, v in self.per_epoch("train/img_s")]
        return statistics.median(rates) if rates else None

    def size(self) -> tuple[int, float]:
        """(parameters, forward MFLOPs per image) of the network the run trained, as ``environment.json`` recorded
        it; runs from before that record are counted at the registry's default options."""
        recorded = (self.environment or {}).get("model")
        if recorded:
            return int(recorded["params"]), float(recorded["mflops"])
        hp = self.hparams
        info = describe(self.model, hp["in_channels"], hp["image_size"], hp["num_classes"])
        return info.params, info.mflops

    def epochs_through(self, epoch: int) -> float:
        """Epochs trained up to the end of ``epoch``. A step limit (``--trainer.max_steps``) may cut the run's last
        epoch, whose end still runs: that epoch counts by its share of a full epoch's optimizer steps."""
        ends = {e: step for e, step, _ in self.values("train/loss")}
        last = max(ends, default=-1)
        if epoch != last or epoch < 1 or 0 not in ends or epoch - 1 not in ends:
            return epoch + 1.0
        return epoch + min(1.0, (ends[epoch] - ends[epoch - 1]) / (ends[0] + 1))


def _resume_number(path: Path) -> int:
    """k of ``config.resume-k.yaml`` (the k-th resume's config)."""
    return int(path.stem.rsplit("-", 1)[1])


def fmt(value: float | None, spec: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _test_accs(folder: Path) -> list[float]:
    if not (folder / "metrics.csv").is_file():
        return []
    with open(folder / "metrics.csv", newline="") as f:
        return [float(r["test/acc"]) for r in csv.DictReader(f) if r.get("test/acc")]


def _data_options(config: dict) -> dict:
    data = config.get("data") or {}
    return dict(data.get("init_args") or {}) if "class_path" in data else dict(data)


def _read_yaml(path: Path) -> dict | None:
    return yaml.safe_load(path.read_text()) if path.is_file() else None
