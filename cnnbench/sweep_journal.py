"""Optuna's journal file storage for ``cnnbench sweep``: a study on a shared file system, no database server.

``--storage journal:PATH`` (or any path ending ``.log`` / ``.journal``) is a ``JournalStorage`` over a
``JournalFileBackend``: every worker appends to one file under a file lock, so workers on many machines that see the
same file (NFS, Lustre) share one study, and a waiting trial is claimed by exactly one of them.

Optuna's heartbeats (``heartbeat_interval`` + ``RetryHeartbeatStaleTrialCallback``) exist for RDB storages only.
For the journal the same is done here with what the journal does store: a worker writes the time into its running
trial (a system attribute) every ``interval`` seconds; a worker that starts fails the running trials silent for
longer than ``grace`` seconds and enqueues each once again with Optuna's own retry callback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

HEARTBEAT_ATTR = "cnnbench:heartbeat"
SUFFIXES = (".log", ".journal")


def is_journal(storage: str) -> bool:
    return storage.startswith("journal:") or ("://" not in storage and storage.endswith(SUFFIXES))


def journal_storage(storage: str) -> Any:
    """The journal storage of ``journal:PATH`` or ``PATH.log``; its folder is created."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(storage.removeprefix("journal:")).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def has_rdb_heartbeat(storage: Any) -> bool:
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)


def beat(storage: Any, trial_id: int) -> None:
    """Tell the storage this worker's trial is alive (Optuna's heartbeat where it has one, else the journal's)."""
    if has_rdb_heartbeat(storage):
        storage.record_heartbeat(trial_id)
    else:
        storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())


def fail_stale(study: Any, storage: Any, grace: float) -> list[int]:
    """Fail the running trials of dead workers and enqueue each once more; the numbers of those failed here.

    RDB storages: Optuna's ``fail_stale_trials``. Journal: a running trial whose last sign of life (its heartbeat
    attribute, or its start) is older than ``grace`` seconds.
    """
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
    from optuna.trial import TrialState

    if has_rdb_heartbeat(storage):
        fail_stale_trials(study)
        return []
    if not isinstance(storage, optuna.storages.JournalStorage):
        return []
    now, failed = time.time(), []
    retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
        if now - max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started) <= grace:
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed (or finished) it first
            continue
        retry(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed
