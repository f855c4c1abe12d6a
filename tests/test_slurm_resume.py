"""``--ckpt_path auto`` in a (requeued) SLURM job: the job's own folder, and its newest state by global_step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import CnnbenchCLI, base_args

JOB = {"SLURM_JOB_ID": "77", "SLURM_RESTART_COUNT": "1"}  # a requeued batch step (no srun step id)


def save_with_step(source: Path, target: Path, step: int) -> None:
    """A copy of ``source`` that records ``step`` as its global_step (what --ckpt_path auto compares)."""
    checkpoint = torch.load(source, weights_only=False)
    checkpoint["global_step"] = step
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, target)


@pytest.fixture
def other_run(cifar_dir: Path, tmp_path: Path) -> Path:
    """Another run of the same group, with a last.ckpt (the newest file in the group)."""
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--trainer.max_steps=2")])
    return cli.run_dir


def fit_auto(cifar_dir: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> CnnbenchCLI:
    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_STEP_ID", raising=False)
    return CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_steps=3", "--ckpt_path=auto")])


def test_a_job_without_a_checkpoint_starts_in_its_own_folder(
    cifar_dir: Path, tmp_path: Path, other_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = fit_auto(cifar_dir, tmp_path, monkeypatch)
    # Not the other run's last.ckpt (the newest in the group): the job starts afresh, in the job's folder.
    assert cli.run_dir == other_run.parent / "slurm-77"
    assert cli.config["fit"]["ckpt_path"] is None and cli.trainer.global_step == 3
    assert torch.load(other_run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 2  # untouched


def test_a_requeued_job_resumes_its_newest_state_by_global_step(
    cifar_dir: Path, tmp_path: Path, other_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_dir = other_run.parent / "slurm-77"
    source = other_run / "checkpoints/last.ckpt"
    save_with_step(source, job_dir / "checkpoints/last.ckpt", 1)
    save_with_step(source, job_dir / "hpc_ckpt_1.ckpt", 2)  # saved on the requeue signal, after last.ckpt
    save_with_step(source, job_dir / "hpc_ckpt_2.ckpt", 0)  # newest file and version, but the fewest steps
    shutil.copy(other_run / "config.yaml", job_dir / "config.yaml")
    cli = fit_auto(cifar_dir, tmp_path, monkeypatch)
    assert cli.config["fit"]["ckpt_path"] == str(job_dir / "hpc_ckpt_1.ckpt")
    assert cli.run_dir == job_dir and cli.trainer.global_step == 3
    assert sorted(p.name for p in job_dir.parent.iterdir()) == sorted([other_run.name, "slurm-77"])


def test_equal_steps_prefer_last_ckpt(tmp_path: Path, cifar_dir: Path, other_run: Path) -> None:
    from cnnbench.launch import newest_state

    job_dir = tmp_path / "job"
    source = other_run / "checkpoints/last.ckpt"
    save_with_step(source, job_dir / "checkpoints/last.ckpt", 2)
    save_with_step(source, job_dir / "hpc_ckpt_1.ckpt", 2)
    assert newest_state(job_dir, job_dir / "checkpoints/last.ckpt") == job_dir / "checkpoints/last.ckpt"
    (job_dir / "hpc_ckpt_3.ckpt").write_bytes(b"cut by the kill")  # unreadable: skipped, not fatal
    save_with_step(source, job_dir / "hpc_ckpt_2.ckpt", 5)
    assert newest_state(job_dir, job_dir / "checkpoints/last.ckpt") == job_dir / "hpc_ckpt_2.ckpt"
