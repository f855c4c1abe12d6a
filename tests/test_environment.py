"""environment.json: the code, packages, devices and data a run used, written once per run and once per resume."""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest

from cnnbench.callbacks.environment import git_state
from tests.helpers.runs import CnnbenchCLI, base_args


def _fit(data_dir: Path, root: Path, *extra: str) -> Path:
    cli = CnnbenchCLI(args=["fit", *base_args(data_dir, root, "--trainer.max_epochs=1", *extra)])
    return cli.run_dir


def test_environment_json_fields_and_resume(cifar_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run_dir = _fit(cifar_dir, root, "--seed_everything=7")
    record = json.loads((run_dir / "environment.json").read_text())
    assert record["seed"] == 7
    assert record["precision"] == "32-true"
    assert record["devices"]["accelerator"] == "cpu" and record["devices"]["count"] == 1
    assert record["versions"]["torch"] == metadata.version("torch")
    assert record["versions"]["lightning"] == metadata.version("lightning")
    assert set(record["versions"]) >= {"python", "torchmetrics", "cnnbench"}
    assert set(record["git"]) == {"commit", "dirty"}
    data = record["data"]
    assert data["dataset"] == "cifar10" and data["val_size"] == 20 and data["split_seed"] == 0
    assert len(data["files_sha256"]) == 64 and len(data["val_split_sha256"]) == 64

    # A resumed run keeps the first record and adds one of its own.
    resume = f"--ckpt_path={run_dir}/checkpoints/last.ckpt"
    CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2", resume)])
    assert json.loads((run_dir / "environment.json").read_text()) == record
    assert json.loads((run_dir / "environment.resume-1.json").read_text())["data"] == data

    # Another split of the same files: the same data checksum, another validation checksum.
    other = json.loads((_fit(cifar_dir, root, "--data.split_seed=1") / "environment.json").read_text())["data"]
    assert other["files_sha256"] == data["files_sha256"]
    assert other["val_split_sha256"] != data["val_split_sha256"]


def test_git_state_of_a_repository_and_outside_one(tmp_path: Path) -> None:
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    run = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run([*run, "add", "a.txt"], check=True)
    subprocess.run([*run, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*run, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_wandb_config_holds_the_environment(cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.wandb_records import read_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--trainer.max_epochs=1", "--wandb.enabled=true")])
    cli.trainer.loggers[-1].experiment.finish()
    (run_file,) = (cli.run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    expected = json.loads((cli.run_dir / "environment.json").read_text())
    # W&B's service may still be writing the file's last records after finish(): read until they are there.
    deadline = time.monotonic() + 15
    while "environment" not in (config := read_run(run_file)["config"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert config.get("environment") == expected
