"""``cnnbench sweep SWEEP.yaml``: a study of ordinary ``fit`` runs on Optuna (the ``sweep`` extra).

The study lives in an Optuna storage (default: SQLite in the study folder; any SQLAlchemy URL with
``--storage``, or a journal file on a shared file system: ``--storage journal:PATH``), so several workers, on one
machine or many, run one study by starting the same command.
How trials are queued and claimed is ``cnnbench.sweep_queue``; the sweep file is ``cnnbench.sweep_spec``.
"""

from __future__ import annotations

import argparse
import csv
import math
import threading
import warnings
from pathlib import Path
from typing import Any

from cnnbench import sweep_journal, sweep_queue
from cnnbench.errors import CnnbenchError
from cnnbench.sweep_journal import fail_stale
from cnnbench.sweep_queue import claim, make_storage, open_study
from cnnbench.sweep_spec import SweepSpec, suggest, trial_args


def best_value(run_dir: Path, metric: str, direction: str) -> float:
    """The best value of ``metric`` in the run's metrics.csv (a resumed run's file is its whole history)."""
    with open(run_dir / "metrics.csv", newline="") as f:
        values = [float(r[metric]) for r in csv.DictReader(f) if r.get(metric)]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        raise CnnbenchError(f"{run_dir}: the run logged no {metric} (the sweep's metric)")
    return max(values) if direction == "maximize" else min(values)


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
    beat = threading.Thread(target=sweep_queue.heartbeat, args=(storage, trial_id, stop), daemon=True)
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
        fail_stale(study, storage, sweep_queue.GRACE_S)
        if (trial := claim(study, storage)) is None:
            break
        run_trial(spec, study, storage, trial, study_dir)
    text = write_leaderboard(leaderboard(study, spec.direction), study_dir)
    print(f"\nstudy {spec.study} ({spec.metric}, {spec.direction}):\n{text}")
    print(f"wrote {study_dir / 'leaderboard.md'}, {study_dir / 'leaderboard.csv'}")
