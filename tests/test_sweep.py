"""``cnnbench sweep``: Optuna studies of ordinary fit runs (grid points once each, pruning, shared storage)."""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from cnnbench.sweep_queue import ENQUEUED_ATTR, make_storage
from tests.helpers.runs import base_args, main, read_metrics


def _sweep_file(tmp_path: Path, data_dir: Path, root: Path, **spec: object) -> Path:
    path = tmp_path / "sweep.yaml"
    args = base_args(data_dir, root, "--trainer.max_epochs=1")
    path.write_text(yaml.safe_dump({"study": "s", "args": args, **spec}))
    return path


def _study(root: Path) -> optuna.Study:
    # Through cnnbench's storage: a test that reads the database while a worker creates it races it as a worker.
    return optuna.load_study(study_name="s", storage=make_storage(f"sqlite:///{root / 's' / 'study.db'}"))


def test_grid_over_seeds_runs_each_seed_once_in_its_own_run_folder(cifar_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    sweep = _sweep_file(tmp_path, cifar_dir, root, sampler="grid", space={"seed_everything": {"grid": [0, 1, 2]}})
    main(["sweep", str(sweep)])
    trials = _study(root).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert sorted(t.params["seed_everything"] for t in trials) == [0, 1, 2]
    for t in trials:
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir.parent == root / "s" / f"trial-{t.number:04d}"
        assert t.value == max(float(r["val/acc"]) for r in read_metrics(run_dir) if r.get("val/acc"))
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["seed_everything"] == t.params["seed_everything"]
    with open(root / "s" / "leaderboard.csv", newline="") as f:
        board = list(csv.DictReader(f))
    assert sorted(int(r["trial"]) for r in board) == [0, 1, 2]
    assert [float(r["value"]) for r in board] == sorted((float(r["value"]) for r in board), reverse=True)
    # Run again: the study is complete, nothing runs twice.
    main(["sweep", str(sweep)])
    assert len(_study(root).trials) == 3


def test_a_trial_worse_than_the_median_is_pruned_and_stops_early(cifar_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    space = {"model.init_args.lr": {"float": [0.01, 0.1], "log": True}}
    sweep = _sweep_file(tmp_path, cifar_dir, root, sampler="random", pruner="median", trials=1, space=space)
    path = tmp_path / "sweep.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["args"] = [a.replace("--trainer.max_epochs=1", "--trainer.max_epochs=3") for a in spec["args"]]
    path.write_text(yaml.safe_dump(spec))
    # Five earlier trials that reached a perfect accuracy at every epoch: the median pruner's startup trials.
    (root / "s").mkdir(parents=True)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{root / 's' / 'study.db'}", direction="maximize")
    for _ in range(5):
        study.add_trial(create_trial(
            value=1.0, params={"model.init_args.lr": 0.05},
            distributions={"model.init_args.lr": FloatDistribution(0.01, 0.1, log=True)},
            intermediate_values={0: 1.0, 1: 1.0, 2: 1.0},
        ))  # fmt: skip
    study.set_user_attr(ENQUEUED_ATTR, 5)
    main(["sweep", str(sweep), "--trials", "6"])
    last = _study(root).trials[-1]
    assert last.state == TrialState.PRUNED
    epochs = {r["epoch"] for r in read_metrics(Path(last.user_attrs["run_dir"])) if r.get("val/acc")}
    assert epochs == {"0"}  # stopped after the first of three epochs


def test_bad_sweep_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"study": "s", "sampler": "grid", "space": {"x": {"float": [0, 1]}}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path)])
    assert exit_info.value.code == 2
    assert "grid sampler takes only grid and choice keys" in capsys.readouterr().err


@pytest.mark.slow
def test_a_changed_grid_on_a_stored_study_is_one_line_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Optuna cannot add a grid point to a stored categorical key: said before a trial is claimed, not as a traceback
    from each new trial."""
    root = tmp_path / "runs"
    (root / "s").mkdir(parents=True)
    storage = make_storage(f"sqlite:///{root / 's' / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.set_user_attr(ENQUEUED_ATTR, 2)
    grid = CategoricalDistribution([0.01, 0.03])
    for lr, value in ((0.01, 0.7), (0.03, 0.6)):
        study.add_trial(create_trial(params={"model.init_args.lr": lr}, distributions={"model.init_args.lr": grid},
                                     value=value))  # fmt: skip
    sweep = _sweep_file(tmp_path, tmp_path / "no-data", root, sampler="grid",
                        space={"model.init_args.lr": {"grid": [0.01, 0.03, 0.003]}})  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(sweep)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "space.model.init_args.lr" in err and "new 'study' name" in err
    assert len(_study(root).trials) == 2  # nothing claimed, enqueued or failed
    # The same grid again is the same study: accepted (complete, so nothing runs).
    _sweep_file(tmp_path, tmp_path / "no-data", root, sampler="grid",
                space={"model.init_args.lr": {"grid": [0.01, 0.03]}})  # fmt: skip
    main(["sweep", str(sweep)])
    assert len(_study(root).trials) == 2


def test_two_workers_share_one_study_and_run_each_grid_point_once(cifar_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    sweep = _sweep_file(tmp_path, cifar_dir, root, sampler="grid", space={"seed_everything": {"grid": [0, 1, 2, 3]}})
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "cnnbench", "sweep", str(sweep)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = _study(root).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(t.params["seed_everything"] for t in trials) == [0, 1, 2, 3]
    # Between them the workers started each trial once (which worker takes how many depends on their timing).
    started = sorted(
        line.split(":")[1] for out in outputs for line in out.splitlines() if line.startswith("cnnbench sweep: trial")
    )
    assert started == sorted(f" trial {t.number}" for t in trials)


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_enqueued_again(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    from optuna.storages import fail_stale_trials

    from cnnbench import sweep_queue
    from cnnbench.sweep_spec import SweepSpec, suggest

    root = tmp_path / "runs"
    sweep = _sweep_file(tmp_path, cifar_dir, root, sampler="grid", space={"seed_everything": {"grid": [0]}})
    spec = yaml.safe_load(sweep.read_text())
    spec["args"] = [a.replace("--trainer.max_epochs=1", "--trainer.max_epochs=1000") for a in spec["args"]]
    sweep.write_text(yaml.safe_dump(spec))
    # A worker with a 1 s heartbeat, killed with SIGKILL while its trial trains.
    code = ("import sys; import cnnbench.sweep_queue as s; s.HEARTBEAT_S = 1; s.GRACE_S = 3; "
            "from cnnbench.__main__ import main; main(sys.argv[1:])")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    worker = subprocess.Popen([sys.executable, "-c", code, "sweep", str(sweep)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            db = root / "s" / "study.db"
            with contextlib.suppress(KeyError):  # KeyError: the worker has not created the study yet
                if db.is_file() and any(t.state == TrialState.RUNNING for t in _study(root).trials):
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the worker never started its trial")
        time.sleep(2)  # a heartbeat or two recorded
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert _study(root).trials[0].state == TrialState.RUNNING  # nobody could tell it that it died
    time.sleep(4)  # longer than the grace period
    monkeypatch.setattr(sweep_queue, "GRACE_S", 3)
    storage = make_storage(f"sqlite:///{root / 's' / 'study.db'}")
    fail_stale_trials(optuna.load_study(study_name="s", storage=storage))  # what the next worker does first
    trials = _study(root).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == {"seed_everything": 0}  # the same grid point, for the next worker to claim
    study = optuna.load_study(study_name="s", storage=storage)
    again = sweep_queue.claim(study, storage)
    assert again is not None
    assert suggest(again, SweepSpec.read(sweep)) == {"seed_everything": 0}


def test_a_storage_url_without_its_driver_is_one_line(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    space = {"seed_everything": {"grid": [0]}}
    sweep = _sweep_file(tmp_path, cifar_dir, tmp_path / "runs", sampler="grid", space=space)
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(sweep), "--storage", "postgresql+psycopg://u:p@localhost/db"])
    assert exit_info.value.code == 2
    assert "error: --storage postgresql+psycopg://...: its database driver is missing" in capsys.readouterr().err
