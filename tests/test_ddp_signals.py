"""SIGTERM under DDP (2 gloo processes), wherever it lands: every rank saves the same step and exits 143.

Lightning's own handler broadcasts from inside the signal handler; cnnbench's only records the signal, and the
ranks agree at a training batch end (cnnbench.callbacks.stop_signals). The signal comes at many moments: in either
rank only, in both at different points, in validation, in the middle of a checkpoint save, and from outside at
random times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import base_args, column, read_metrics

DDP = ("--trainer.strategy=ddp", "--trainer.devices=2", "--ckpt_path=auto", "--checkpoint.last_every_n_steps=0",
       "--trainer.callbacks+=tests.helpers.callbacks.SignalAt")  # fmt: skip
STEPS_PER_EPOCH = 3  # 80 train images over 2 ranks, batches of 16
TIMEOUT = 300  # a hang fails the test instead of blocking it (the shared CI machine can be slow)


def fit(cifar_dir: Path, root: Path, records: Path, moments: str, epochs: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNBENCH_TEST_RECORDS": str(records), "CNNBENCH_TEST_SIGNAL": moments}
    args = base_args(cifar_dir, root, *DDP, f"--trainer.max_epochs={epochs}")
    command = [sys.executable, "-m", "cnnbench", "fit", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, records: Path) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:  # a hang: end both ranks (rank 1 is rank 0's child, not the test's)
        for pid_file in records.glob("pid.rank*"):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        process.kill()
        raise
    return process.returncode, err


MOMENTS = {
    "rank0-batch-start": "0:on_train_batch_start:4",
    "rank1-optimizer-step": "1:on_before_optimizer_step:4",
    "rank1-last-batch": "1:on_train_batch_end:5",  # agreed at an epoch's last batch: stops after its end
    "both-in-validation": "0:on_validation_batch_start:3,1:on_validation_batch_start:3",
    "both-at-other-moments": "0:on_train_batch_end:4,1:on_before_optimizer_step:6",
    "rank1-in-a-save": "1:on_save_checkpoint:3",
    "outside": "",  # SIGTERM to both processes at random times
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_sigterm_anywhere_saves_one_step_on_every_rank_and_exits_143(
    cifar_dir: Path, tmp_path: Path, moment: str
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    process = fit(cifar_dir, tmp_path, records, MOMENTS[moment], epochs=40)
    if moment == "outside":
        deadline = time.monotonic() + TIMEOUT
        while len(list(records.glob("pid.rank*"))) < 2 or not list(tmp_path.glob("*/*/metrics.csv")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        rng = random.Random()
        for pid_file in sorted(records.glob("pid.rank*")):
            time.sleep(rng.uniform(0, 1.5))
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    code, err = finish(process, records)
    assert code == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    (run_dir,) = tmp_path.glob("cifar10-simple_cnn/*")
    state = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    step = state["global_step"]
    assert f"saved the state of step {step} " in err
    assert 0 < step < 40 * STEPS_PER_EPOCH
    # Saved mid-epoch at a batch end (never at an epoch's last batch, whose validation and end come first), and
    # nothing trained after it.
    assert step % STEPS_PER_EPOCH != 0
    assert [s for s, _ in column(read_metrics(run_dir), "train/lr")] == list(range(step))
    if moment != "outside":  # rank signals land at known steps: the ranks agree one batch end later
        first = min(int(m.split(":")[2]) for m in MOMENTS[moment].split(","))
        assert step <= first + 2 + STEPS_PER_EPOCH
    if moment != "rank0-batch-start":
        return
    # The state resumes: one more epoch after the signal's, from where it stopped, no step lost or repeated.
    epochs = step // STEPS_PER_EPOCH + 1
    code, err = finish(fit(cifar_dir, tmp_path, records, "", epochs=epochs), records)
    assert code == 0, err[-3000:]
    steps = [s for s, _ in column(read_metrics(run_dir), "train/lr")]
    assert sorted(set(steps)) == list(range(epochs * STEPS_PER_EPOCH))
