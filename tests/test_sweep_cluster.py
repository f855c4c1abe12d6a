"""Sweeps beyond one machine: Optuna's journal file storage, its heartbeat, and the SLURM array script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from cnnbench.sweep_journal import HEARTBEAT_ATTR, beat, fail_stale
from cnnbench.sweep_queue import claim, make_storage
from cnnbench.sweep_spec import SweepSpec, suggest
from tests.helpers.runs import base_args

REPO = Path(__file__).parents[1]
ARRAY_SCRIPT = REPO / "scripts" / "slurm" / "sweep_array.sbatch"


def _grid_sweep(tmp_path: Path, data_dir: Path, seeds: list[int]) -> Path:
    path = tmp_path / "seeds.yaml"
    args = base_args(data_dir, tmp_path / "runs", "--trainer.max_epochs=1")
    path.write_text(yaml.safe_dump({"study": "s", "sampler": "grid", "args": args,
                                    "space": {"seed_everything": {"grid": seeds}}}))  # fmt: skip
    return path


@pytest.mark.parametrize("storage", ["journal:{dir}/study.log", "{dir}/shared/study.journal"])
def test_journal_storage_is_chosen_by_prefix_or_suffix(tmp_path: Path, storage: str) -> None:
    made = make_storage(storage.format(dir=tmp_path))
    assert isinstance(made, optuna.storages.JournalStorage)
    optuna.create_study(study_name="x", storage=made)
    assert Path(storage.format(dir=tmp_path).removeprefix("journal:")).stat().st_size > 0  # the study is in the file


@pytest.mark.slow
def test_two_workers_on_one_journal_file_run_a_grid_exactly_once(cifar_dir: Path, tmp_path: Path) -> None:
    sweep = _grid_sweep(tmp_path, cifar_dir, [0, 1, 2])
    journal = tmp_path / "shared" / "study.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "cnnbench", "sweep", str(sweep), "--storage", f"journal:{journal}"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]  # fmt: skip
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = optuna.load_study(study_name="s", storage=make_storage(f"journal:{journal}")).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert sorted(t.params["seed_everything"] for t in trials) == [0, 1, 2]
    started = sorted(line for out in outputs for line in out.splitlines() if line.startswith("cnnbench sweep: trial"))
    assert len(started) == 3 and len({line.split(":")[1] for line in started}) == 3  # each trial started once
    assert len(list((tmp_path / "runs" / "s").glob("trial-*/*/metrics.csv"))) == 3


def test_a_journal_trial_whose_worker_went_silent_is_failed_and_enqueued_once(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'study.log'}")
    study = optuna.create_study(study_name="s", storage=storage)
    for seed in (0, 1):
        study.enqueue_trial({"seed_everything": seed}, user_attrs={"cnnbench:slot": seed})
    dead, alive = claim(study, storage), claim(study, storage)
    beat(storage, dead._trial_id)
    time.sleep(1.5)
    beat(storage, alive._trial_id)  # this worker still beats; the other has been silent for 1.5 s
    assert fail_stale(study, storage, grace=1.0) == [dead.number]
    assert fail_stale(study, storage, grace=1.0) == []  # failed once, enqueued once
    states = {t.number: t.state for t in study.trials}
    assert states == {dead.number: TrialState.FAIL, alive.number: TrialState.RUNNING, 2: TrialState.WAITING}
    retry = study.trials[2]
    assert retry.user_attrs["cnnbench:slot"] == 0 and retry.system_attrs["failed_trial"] == dead.number
    again = claim(study, storage)  # the next worker runs the same grid point
    assert again is not None and again.number == 2 and HEARTBEAT_ATTR in study.trials[dead.number].system_attrs
    spec = SweepSpec(study="s", space={"seed_everything": {"grid": [0, 1]}})
    assert suggest(again, spec) == {"seed_everything": 0}


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def test_the_slurm_array_script_starts_one_worker_per_task_on_the_shared_storage(tmp_path: Path) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    # srun and cnnbench as SLURM and the install would provide them, each recording how it was called.
    _stub(bin_dir, "srun", f'echo "srun $*" >> {log}; while [[ $1 == -* ]]; do shift; done; exec "$@"')
    _stub(bin_dir, "cnnbench", f'echo "cnnbench $* task=$SLURM_ARRAY_TASK_ID" >> {log}')
    sweep = tmp_path / "lenet.yaml"
    sweep.write_text("study: lenet\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_JOB_ID": "77",
           "SLURM_SUBMIT_DIR": str(tmp_path / "submit")}  # fmt: skip
    env.pop("CNNBENCH_SWEEP_STORAGE", None)
    tasks = [subprocess.run(["bash", str(ARRAY_SCRIPT), str(sweep), "--trials=8"], env={**env, "SLURM_ARRAY_TASK_ID":
                            str(k)}, capture_output=True, text=True, check=False) for k in range(3)]  # fmt: skip
    assert [t.returncode for t in tasks] == [0, 0, 0], [t.stderr for t in tasks]
    storage = f"journal:{tmp_path / 'submit'}/sweeps/lenet.log"
    calls = log.read_text().splitlines()
    sweep_call = f"cnnbench sweep {sweep} --storage {storage} --trials=8"
    assert calls == [line for k in range(3) for line in (f"srun --ntasks=1 {sweep_call}", f"{sweep_call} task={k}")]
    header = [line for line in ARRAY_SCRIPT.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --gres=gpu:1" in header and "#SBATCH --ntasks=1" in header  # one GPU, one worker per task

    # A database server instead of the journal: every task uses the given URL.
    url = "postgresql+psycopg2://u:p@db/sweeps"
    subprocess.run(["bash", str(ARRAY_SCRIPT), str(sweep)], env={**env, "SLURM_ARRAY_TASK_ID": "0",
                   "CNNBENCH_SWEEP_STORAGE": url}, check=True, capture_output=True)  # fmt: skip
    assert log.read_text().splitlines()[-1] == f"cnnbench sweep {sweep} --storage {url} task=0"
    # Not an array task: one line saying how to submit it, exit 2.
    outside = subprocess.run(["bash", str(ARRAY_SCRIPT), str(sweep)], env={**env, "SLURM_ARRAY_TASK_ID": ""},
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert outside.returncode == 2 and len(outside.stderr.splitlines()) == 1 and "sbatch --array" in outside.stderr
