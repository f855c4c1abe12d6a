"""A SIGKILL right after last.ckpt is written loses no metrics.csv row: the resumed file equals a straight run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.runs import CnnbenchCLI, base_args, read_metrics


def comparable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows without their empty cells and timings (train/epoch_s, train/img_s differ between any two runs)."""
    return [{k: v for k, v in r.items() if v != "" and not k.endswith("_s")} for r in rows]


def stopped(process: subprocess.Popen) -> bool:
    return Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop_at", ["3", "5"], ids=["epoch_end", "mid_epoch_step"])
def test_a_kill_right_after_the_checkpoint_write_loses_no_row(stop_at: str, cifar_dir: Path, tmp_path: Path) -> None:
    # 5 steps an epoch, last.ckpt every 2 steps and at epoch ends: saves at steps 2, 4, 5 (epoch 0's end), 6, 8, ...
    # The 3rd is an epoch end (its epoch row pending), the 5th a step inside epoch 1 (its step row pending).
    extra = ["--trainer.max_epochs=3", "--checkpoint.last_every_n_steps=2"]
    straight = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path / "straight", *extra)]).run_dir
    root = tmp_path / "killed"
    env = {**os.environ, "WANDB_MODE": "disabled", "CNNBENCH_TEST_STOP_AFTER": "last.ckpt",
           "CNNBENCH_TEST_STOP_AT": stop_at}  # fmt: skip
    args = [sys.executable, "-m", "cnnbench", "fit", *base_args(cifar_dir, root, *extra),
            "--trainer.plugins=tests.helpers.callbacks.StopAfterSave"]  # fmt: skip
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not stopped(process):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, *extra, "--ckpt_path=last")]).run_dir
    assert comparable(read_metrics(resumed)) == comparable(read_metrics(straight))
