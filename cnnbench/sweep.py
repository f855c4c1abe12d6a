"""``cnnbench sweep SWEEP.yaml``: a study of ordinary ``fit`` runs on Optuna (the ``sweep`` extra).

The study lives in an Optuna storage (default: SQLite in the study folder; any SQLAlchemy URL with
``--storage``, or a journal file on a shared file system: ``--storage journal:PATH``), so several workers, on one
machine or many, run one study by starting the same command.
The worker that creates the study enqueues every trial the study is asked for (each grid point once);
workers then claim waiting trials one at a time, which the database does atomically, so no trial runs
twice and a study never runs more trials than asked. A worker that dies mid-trial stops its heartbeat:
the next worker to start marks that trial failed and enqueues it again.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench import sweep_journal
from cnnbench.config_files import load_yaml
from cnnbench.errors import CnnbenchError
from cnnbench.sweep_journal import fail_stale, is_journal, journal_storage

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
KINDS = ("float", "int", "choice", "grid")
HEARTBEAT_S = 30  # a trial whose worker has been silent for GRACE_S is stale: failed, and enqueued again
GRACE_S = 120
ENQUEUED_ATTR = "cnnbench:enqueued"  # study attribute: how many trials the study was asked for so far


@dataclass
class SweepSpec:
    """A sweep file (see ``configs/sweeps/``)."""

    study: str
    config: str | None = None
    args: list[str] = field(default_factory=list)
    metric: str = "val/acc"
    direction: str = "maximize"
    sampler: str = "tpe"
    pruner: str = "none"
    trials: int | None = None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> SweepSpec:
        if not path.is_file():
            raise CnnbenchError(f"{path}: no such sweep file")
        raw = load_yaml(path, "sweep file") or {}
        known = set(cls.__dataclass_fields__)
        if not isinstance(raw, dict) or "study" not in raw or set(raw) - known:
            raise CnnbenchError(f"{path}: a sweep file needs 'study' and takes only {', '.join(sorted(known))}")
        spec = cls(**raw)
        spec.check(path)
        return spec

    def check(self, path: Path) -> None:
        """Refuse, naming the key, what Optuna would fail on later (or silently misread)."""
        if self.sampler not in SAMPLERS or self.pruner not in PRUNERS:
            raise CnnbenchError(f"{path}: sampler is one of {SAMPLERS}, pruner one of {PRUNERS}")
        if self.direction not in ("maximize", "minimize"):
            raise CnnbenchError(f"{path}: direction is maximize or minimize")
        if not isinstance(self.args, list) or not all(isinstance(a, str) for a in self.args):
            raise CnnbenchError(f"{path}: args is a list of strings (CLI arguments)")
        for key, dist in self.space.items():
            kinds = [k for k in KINDS if k in (dist or {})]
            if len(kinds) != 1 or set(dist) - {*KINDS, "log"}:
                raise CnnbenchError(f"{path}: space.{key} needs exactly one of {KINDS} (and 'log' for ranges)")
            values = dist[kinds[0]]
            if kinds[0] in ("float", "int") and not (isinstance(values, list) and len(values) == 2):
                raise CnnbenchError(f"{path}: space.{key}: {kinds[0]} takes [low, high]")
            if kinds[0] in ("choice", "grid") and not (isinstance(values, list) and values):
                raise CnnbenchError(f"{path}: space.{key}: {kinds[0]} takes a non-empty list")
            if self.sampler == "grid" and kinds[0] in ("float", "int"):
                raise CnnbenchError(f"{path}: space.{key}: the grid sampler takes only grid and choice keys")

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the grid/choice keys (the grid sampler's points), in a fixed order."""
        keys = [k for k, d in self.space.items() if "grid" in d or "choice" in d]
        values = [self.space[k].get("grid", self.space[k].get("choice")) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def suggest(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """The trial's value of every key of the space (a grid point's are fixed by its enqueued parameters)."""
    params = {}
    for key, dist in spec.space.items():
        if "float" in dist:
            params[key] = trial.suggest_float(key, *map(float, dist["float"]), log=bool(dist.get("log")))
        elif "int" in dist:
            params[key] = trial.suggest_int(key, *map(int, dist["int"]), log=bool(dist.get("log")))
        else:
            params[key] = trial.suggest_categorical(key, dist.get("grid", dist.get("choice")))
    return params


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def trial_args(spec: SweepSpec, study_dir: Path, number: int, params: dict[str, Any]) -> list[str]:
    """The ``cnnbench fit`` arguments of one trial: the config, the fixed args, the trial's values, its folder."""
    config = ["--config", spec.config] if spec.config else []
    values = [f"--{key}={_cli_value(value)}" for key, value in params.items()]
    tags = json.dumps([f"study:{spec.study}", f"trial:{number}"])
    placement = [f"--trainer.default_root_dir={study_dir}", f"--run_name=trial-{number:04d}", f"--wandb.tags={tags}"]
    return ["fit", *config, *spec.args, *values, *placement]


def best_value(run_dir: Path, metric: str, direction: str) -> float:
    """The best value of ``metric`` in the run's metrics.csv (a resumed run's file is its whole history)."""
    with open(run_dir / "metrics.csv", newline="") as f:
        values = [float(r[metric]) for r in csv.DictReader(f) if r.get(metric)]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        raise CnnbenchError(f"{run_dir}: the run logged no {metric} (the sweep's metric)")
    return max(values) if direction == "maximize" else min(values)


def make_storage(url: str) -> Any:
    """An RDB storage with heartbeats: a trial whose worker died is failed, and enqueued again, by the next worker.

    A journal file (``journal:PATH``, ``PATH.log``) gets the same from ``cnnbench.sweep_journal``.
    """
    import optuna

    if is_journal(url):
        return journal_storage(url)

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

    # Workers started together race to create the schema of a new database: the loser sees a locked database or
    # the winner's schema version row (IntegrityError), and finds the schema made when it tries again.
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=retry,
            )  # fmt: skip
        except ImportError as exc:
            raise CnnbenchError(
                f"--storage {url.split('://')[0]}://...: its database driver is missing ({exc.__cause__ or exc}); "
                "e.g. pip install psycopg2-binary and use postgresql+psycopg2://, or pymysql and mysql+pymysql://"
            ) from exc
        except ArgumentError as exc:
            raise CnnbenchError(f"--storage: SQLAlchemy cannot use this URL ({exc})") from exc
        except (OperationalError, IntegrityError):
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def open_study(spec: SweepSpec, storage: Any, trials: int | None) -> Any:
    """Create the study (and enqueue its trials) or load it; top up the queue when asked for more trials."""
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    sampler = samplers.get(spec.sampler, optuna.samplers.RandomSampler)()  # grid points are enqueued
    pruner = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner}.get(
        spec.pruner, optuna.pruners.NopPruner
    )()
    options = {"study_name": spec.study, "storage": storage, "sampler": sampler, "pruner": pruner}
    points = spec.grid() if spec.sampler == "grid" else None
    wanted = trials or spec.trials or (len(points) if points else None)
    if wanted is None:
        raise CnnbenchError("the sweep needs 'trials' (or --trials) unless its sampler is grid")
    try:
        study = optuna.create_study(direction=spec.direction, load_if_exists=False, **options)
        enqueued = 0  # creating a study is atomic: only this worker enqueues the first trials
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**options)
        for _ in range(60):  # the creating worker may still be enqueueing
            if ENQUEUED_ATTR in study.user_attrs:
                break
            time.sleep(1)
        enqueued = int(study.user_attrs.get(ENQUEUED_ATTR, 0))
    wanted = min(wanted, len(points)) if points else wanted
    for k in range(enqueued, wanted):
        study.enqueue_trial(points[k] if points else {}, user_attrs={"cnnbench:slot": k})
    if wanted > enqueued or ENQUEUED_ATTR not in study.user_attrs:
        study.set_user_attr(ENQUEUED_ATTR, max(wanted, enqueued))
    return study


def claim(study: Any, storage: Any) -> Any | None:
    """Take a waiting trial of the study (the database lets exactly one worker have it); None when none waits."""
    import optuna
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                study.sampler.before_trial(study, storage.get_trial(trial_id))
                return optuna.Trial(study, trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _heartbeat(storage: Any, trial_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        sweep_journal.beat(storage, trial_id)


def run_trial(spec: SweepSpec, study: Any, storage: Any, trial: Any, study_dir: Path) -> None:
    """One trial: an in-process ``cnnbench fit`` with the pruning callback; its outcome told to the study."""
    import optuna
    from optuna.trial import TrialState
    from optuna_integration import PyTorchLightningPruningCallback

    from cnnbench.cli import CnnbenchCLI

    class TrialCLI(CnnbenchCLI):
        def instantiate_trainer(self, **kwargs: Any) -> Any:
            trainer = super().instantiate_trainer(**kwargs)
            if spec.pruner != "none":
                trainer.callbacks.append(pruning)
            self.trial_run_dir = self.run_dir
            return trainer

    pruning = PyTorchLightningPruningCallback(trial, monitor=spec.metric)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(study.study_name), trial.number
    )
    sweep_journal.beat(storage, trial_id)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(storage, trial_id, stop), daemon=True)
    beat.start()
    cli: TrialCLI | None = None
    try:
        args = trial_args(spec, study_dir, trial.number, suggest(trial, spec))
        print(f"cnnbench sweep: trial {trial.number}: cnnbench {' '.join(args)}", flush=True)
        cli = TrialCLI(args=args)
        trial.set_user_attr("run_dir", str(cli.run_dir))
        if spec.pruner != "none":
            pruning.check_pruned()  # under DDP the callback only flags the prune; single-process it raised already
        study.tell(trial, best_value(cli.run_dir, spec.metric, spec.direction))
    except optuna.TrialPruned:
        run_dir = getattr(cli, "run_dir", None) or _latest_run(study_dir / f"trial-{trial.number:04d}")
        if run_dir is not None:
            trial.set_user_attr("run_dir", str(run_dir))
        study.tell(trial, state=TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        stop.set()


def _latest_run(group_dir: Path) -> Path | None:
    runs = sorted(p for p in group_dir.glob("*") if p.is_dir())
    return runs[-1] if runs else None


LEADERBOARD = ["rank", "trial", "state", "value", "params", "run"]


def leaderboard(study: Any, direction: str) -> list[list[str]]:
    """Finished trials, best first (completed by value, then pruned, then failed)."""
    from optuna.trial import TrialState

    sign = -1 if direction == "maximize" else 1
    order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2}
    done = [t for t in study.get_trials(deepcopy=False) if t.state in order]
    done.sort(key=lambda t: (order[t.state], sign * t.value if t.value is not None else 0.0, t.number))
    return [
        [str(i + 1), str(t.number), t.state.name.lower(), "" if t.value is None else f"{t.value:.4f}",
         " ".join(f"{k}={v}" for k, v in t.params.items()), str(t.user_attrs.get("run_dir", ""))]
        for i, t in enumerate(done)
    ]  # fmt: skip


def write_leaderboard(rows: list[list[str]], study_dir: Path) -> str:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` into the study folder; return the Markdown."""
    with open(study_dir / "leaderboard.csv", "w", newline="") as f:
        csv.writer(f).writerows([LEADERBOARD, *rows])
    lines = ["| " + " | ".join(LEADERBOARD) + " |", "|---:|---:|---|---:|---|---|"]
    text = "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"
    (study_dir / "leaderboard.md").write_text(text)
    return text


def _root(args: list[str]) -> Path:
    """``--trainer.default_root_dir`` of the sweep's fixed args, else cnnbench's default root."""
    from cnnbench.runs import DEFAULT_ROOT

    for i, arg in enumerate(args):
        if arg.startswith("--trainer.default_root_dir="):
            return Path(arg.split("=", 1)[1])
        if arg == "--trainer.default_root_dir" and i + 1 < len(args):
            return Path(args[i + 1])
    return Path(DEFAULT_ROOT)


def sweep_command(args: list[str]) -> None:
    """``cnnbench sweep``: run (or join) a study, then print and write its leaderboard."""
    parser = argparse.ArgumentParser(prog="cnnbench sweep", description=__doc__)
    parser.add_argument("sweep", type=Path, help="Sweep file (see configs/sweeps/).")
    parser.add_argument("--trials", type=int, default=None, help="Trials of the study (overrides the file's).")
    parser.add_argument(
        "--storage", default=None, help="SQLAlchemy URL (sqlite:///..., postgresql+psycopg2://...) or a journal file "
        "on a shared file system (journal:PATH or PATH.log) (default: sqlite:///<study folder>/study.db).",
    )  # fmt: skip
    options = parser.parse_args(args)
    spec = SweepSpec.read(options.sweep)
    try:
        import optuna
    except ImportError as exc:
        raise CnnbenchError("cnnbench sweep needs Optuna: pip install 'cnnbench[sweep]'") from exc
    study_dir = _root(spec.args) / spec.study
    study_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and their retry callback are marked experimental; they are what makes a dead worker's trial visible.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = make_storage(options.storage or f"sqlite:///{study_dir.resolve() / 'study.db'}")
    study = open_study(spec, storage, options.trials)
    # Trials of workers that died (a killed array task): failed and enqueued again, checked before every claim so
    # that workers already running pick them up once their grace period is over.
    while True:
        fail_stale(study, storage, GRACE_S)
        if (trial := claim(study, storage)) is None:
            break
        run_trial(spec, study, storage, trial, study_dir)
    text = write_leaderboard(leaderboard(study, spec.direction), study_dir)
    print(f"\nstudy {spec.study} ({spec.metric}, {spec.direction}):\n{text}")
    print(f"wrote {study_dir / 'leaderboard.md'}, {study_dir / 'leaderboard.csv'}")
