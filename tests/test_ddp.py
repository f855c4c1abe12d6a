"""Lightning's own DDP on the CPU (gloo, 2 processes): trains, logs synced metrics, checkpoints once, resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnbench.data.sampling import ResumableSampler
from tests.helpers.runs import CnnbenchCLI, base_args, column, read_metrics

DDP = ("--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--ckpt_path=auto")
RECORD = "--trainer.callbacks+=tests.helpers.callbacks.RecordLocalTrainAccuracy"


@pytest.mark.slow
def test_ddp_two_processes_train_checkpoint_once_and_resume(cifar_dir: Path, tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNBENCH_TEST_RECORDS": str(records)}
    for epochs in (2, 3):  # the second run resumes the first (auto) and extends it by one epoch
        args = [a for a in base_args(cifar_dir, tmp_path, *DDP, RECORD) if a != "--trainer.accelerator=cpu"]
        command = [sys.executable, "-m", "cnnbench", "fit", *args, f"--trainer.max_epochs={epochs}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    (run_dir,) = (tmp_path / "cifar10-simple_cnn").iterdir()  # one run folder for both ranks and both runs
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints",
        "config.resume-1.yaml",
        "config.yaml",
        "environment.json",
        "environment.resume-1.json",
        "hparams.yaml",
        "metrics.csv",
        "run.lock",  # rank 0's hold on the folder while it fits (one writer per run)
    ]
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt"  # one best (save_top_k=1), one last
    # 80 train images split over 2 ranks: 40 each, 3 batches of 16 per epoch and rank.
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 9
    rows = read_metrics(run_dir)
    assert [step for step, _ in column(rows, "train/lr")] == list(range(9))  # no step lost or repeated
    assert len(column(rows, "val/acc")) == 3
    # Epoch metrics are synced over both ranks: train/acc is both ranks' correct images over their 80, recomputed
    # from each rank's own counts (a rank's 40 alone would give another value unless both ranks scored alike).
    local = [[json.loads(line) for line in (records / f"train_acc.rank{r}.jsonl").read_text().splitlines()]
             for r in (0, 1)]  # fmt: skip
    assert [[(e["epoch"], e["seen"]) for e in rank] for rank in local] == [[(0, 40), (1, 40), (2, 40)]] * 2
    expected = [(r0["correct"] + r1["correct"]) / 80 for r0, r1 in zip(*local, strict=True)]
    assert [acc for _, acc in column(rows, "train/acc")] == pytest.approx(expected, abs=1e-6)
    assert any(r0["correct"] != r1["correct"] for r0, r1 in zip(*local, strict=True))  # the check can tell
    # The last validation (10 images per rank) equals one process validating the same weights on all 20 images:
    # a rank's own half would give another mean loss (and most likely another accuracy).
    single = CnnbenchCLI(
        args=["validate", *base_args(cifar_dir, tmp_path, f"--ckpt_path={run_dir / 'checkpoints/last.ckpt'}")]
    )
    recomputed = read_metrics(single.log_dir)
    for name in ("val/acc", "val/loss"):
        (expected,) = [value for _, value in column(recomputed, name)]
        assert column(rows, name)[-1][1] == pytest.approx(expected, rel=1e-5), name


def test_ranks_split_each_epoch_and_a_resume_skips_what_was_trained() -> None:
    data = list(range(10))
    shards = [list(ResumableSampler(data, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert sorted(i for shard in shards for i, _ in shard) == data
    single = ResumableSampler(data, seed=1)
    single.set_epoch(3)
    full = list(single)
    single.resume_at(3, 4)
    assert list(single) == full[4:]
    assert list(single) == full  # the skip applies once
    single.set_epoch(4)
    assert [i for i, _ in single] != [i for i, _ in full]  # a new order each epoch


def _ddp_fit(cifar_dir: Path, root: Path, *extra: str) -> None:
    args = [a for a in base_args(cifar_dir, root, *DDP, *extra) if a != "--trainer.accelerator=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "cnnbench", "fit", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_ddp_mid_epoch_resume_reports_the_straight_runs_train_means(cifar_dir: Path, tmp_path: Path) -> None:
    # 3 steps per epoch and rank: a stop at step 4 cuts the second epoch after one step. Rank 0 writes the checkpoint;
    # without the ranks' sums added up in it, each rank resumed with rank 0's sums (counted twice, rank 1's lost).
    _ddp_fit(cifar_dir, tmp_path / "straight", "--trainer.max_epochs=2")
    _ddp_fit(cifar_dir, tmp_path / "resumed", "--trainer.max_steps=4")
    _ddp_fit(cifar_dir, tmp_path / "resumed", "--trainer.max_epochs=2")
    (straight,) = (tmp_path / "straight/cifar10-simple_cnn").iterdir()
    (resumed,) = (tmp_path / "resumed/cifar10-simple_cnn").iterdir()
    for name in ("train/loss", "train/acc"):
        expected, actual = column(read_metrics(straight), name), column(read_metrics(resumed), name)
        # (The stopped run also logged its cut epoch's partial means, at step 3.)
        assert actual[-1][0] == expected[-1][0] == 5, name
        assert actual[-1][1] == pytest.approx(expected[-1][1], rel=1e-6), name
