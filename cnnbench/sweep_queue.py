"""The trial queue of ``cnnbench sweep``: the study's storage, its enqueued trials, and the claim of one by a worker.

The worker that creates the study enqueues every trial the study is asked for (each grid point once);
workers then claim waiting trials one at a time, which the database does atomically, so no trial runs
twice and a study never runs more trials than asked. A worker that dies mid-trial stops its heartbeat:
the next worker to start marks that trial failed and enqueues it again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cnnbench import sweep_journal
from cnnbench.errors import CnnbenchError
from cnnbench.sweep_journal import is_journal, journal_storage
from cnnbench.sweep_spec import SweepSpec

HEARTBEAT_S = 30  # a trial whose worker has been silent for GRACE_S is stale: failed, and enqueued again
GRACE_S = 120
ENQUEUED_ATTR = "cnnbench:enqueued"  # study attribute: how many trials the study was asked for so far


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
        check_same_space(study, spec)
    wanted = min(wanted, len(points)) if points else wanted
    for k in range(enqueued, wanted):
        study.enqueue_trial(points[k] if points else {}, user_attrs={"cnnbench:slot": k})
    if wanted > enqueued or ENQUEUED_ATTR not in study.user_attrs:
        study.set_user_attr(ENQUEUED_ATTR, max(wanted, enqueued))
    return study


def check_same_space(study: Any, spec: SweepSpec) -> None:
    """Refuse, before any trial is claimed, a sweep file whose space Optuna cannot add to this stored study: a grid or
    choice key with other values (Optuna fails each new trial on it), or a key of another kind."""
    from optuna.distributions import check_distribution_compatibility

    wanted = spec.distributions()
    for trial in study.get_trials(deepcopy=False):
        for key, stored in trial.distributions.items():
            if key not in wanted:
                continue
            try:
                check_distribution_compatibility(stored, wanted[key])
            except ValueError:
                raise CnnbenchError(
                    f"study '{spec.study}' in this storage has space.{key} as {stored}, the sweep file as "
                    f"{wanted[key]}: a changed search space needs a new 'study' name (or another --storage)"
                ) from None


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


def heartbeat(storage: Any, trial_id: int, stop: threading.Event) -> None:
    """Record that the trial's worker lives, every ``HEARTBEAT_S`` seconds until ``stop`` is set."""
    while not stop.wait(HEARTBEAT_S):
        sweep_journal.beat(storage, trial_id)
