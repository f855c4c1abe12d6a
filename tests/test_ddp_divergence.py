"""A rank whose weights diverged alone: every rank refuses the checkpoint together (no rank left in the barrier)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.runs import base_args

DDP = ("--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.callbacks+=tests.helpers.callbacks.PoisonRank")


@pytest.mark.slow
def test_one_diverged_rank_stops_every_rank_before_the_save(cifar_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNBENCH_TEST_POISON_RANK": "1"}
    command = [sys.executable, "-m", "cnnbench", "fit", *base_args(cifar_dir, tmp_path, *DDP, "--trainer.max_epochs=3")]
    # Before the fix rank 0 waited in the save's barrier for the rank that had raised: a hang, ended by the timeout.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "the weights became nan or inf" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("cifar10-simple_cnn/*/checkpoints/last.ckpt"))  # the diverged state was not saved
