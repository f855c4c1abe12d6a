"""Run folders: ids under SLURM and torchrun, checkpoint resolution; cheap enough to need no training."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnbench import resume, runs
from cnnbench.errors import CheckpointNotFoundError


@pytest.fixture
def slurm_job(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("CNNBENCH_RUN_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT", "RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    return monkeypatch


def test_each_fit_of_a_slurm_job_gets_its_own_folder_and_a_requeue_continues_them_in_order(
    slurm_job: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = runs.new_run_id(tmp_path), runs.new_run_id(tmp_path)
    assert (first, second) == ("slurm-77", "slurm-77-2")
    slurm_job.setenv("SLURM_RESTART_COUNT", "1")  # the requeued job runs its script again from the top
    assert [runs.new_run_id(tmp_path) for _ in range(3)] == ["slurm-77", "slurm-77-2", "slurm-77-3"]


def test_ranks_of_an_srun_step_agree_on_the_folder_without_writing(
    slurm_job: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    slurm_job.setenv("SLURM_STEP_ID", "3")
    slurm_job.setenv("SLURM_PROCID", "1")
    assert runs.new_run_id(tmp_path) == "slurm-77-step3"
    assert not any(tmp_path.iterdir())


def test_only_the_first_process_of_a_run_creates_its_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RANK", "1")  # a torchrun rank: its own id, never used for writing
    runs.check_writable(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "0")
    runs.check_writable(tmp_path / "run")
    assert (tmp_path / "run").is_dir()


def test_torchrun_ranks_leave_one_run_folder(tmp_path: Path, cifar_dir: Path) -> None:
    """Two processes started as torchrun starts them (RANK/LOCAL_RANK set, no launcher of Lightning's)."""
    code = (
        "import sys; from cnnbench import runs; from pathlib import Path; g = Path(sys.argv[1]);"
        "d = g / runs.new_run_id(g); runs.check_writable(d)"
    )
    for rank in ("0", "1"):
        env = {"PATH": "", "RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": "2"}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "group")], env=env, check=True)
    assert len(list((tmp_path / "group").iterdir())) == 1


def test_last_and_best_pick_the_newest_run_of_the_group(tmp_path: Path) -> None:
    older, newer = (tmp_path / name / runs.CHECKPOINT_DIR for name in ("a", "b"))
    for folder, acc in ((older, "0.9000"), (newer, "0.5000")):
        folder.mkdir(parents=True)
        (folder / runs.LAST_NAME).write_bytes(b"x")
        (folder / f"best-epoch001-acc{acc}.ckpt").write_bytes(b"x")
        (folder / "best-epoch000-acc0.1000.ckpt").write_bytes(b"x")
    for age, folder in ((100, older), (0, newer)):
        for file in folder.iterdir():
            os.utime(file, (time.time() - age, time.time() - age))
    assert resume.resolve_checkpoint("last", tmp_path) == newer / runs.LAST_NAME
    assert resume.resolve_checkpoint("best", tmp_path) == newer / "best-epoch001-acc0.5000.ckpt"
    assert runs.find_best(older) == older / "best-epoch001-acc0.9000.ckpt"
    assert runs.run_dir_of(older / runs.LAST_NAME) == older.parent
    with pytest.raises(CheckpointNotFoundError, match="no best checkpoint in any run under"):
        resume.resolve_checkpoint("best", tmp_path / "elsewhere")
