"""One writer per run folder: a second fit of the same run is refused while the first lives, never after it died."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnbench.run_lock import read_holder
from tests.helpers.runs import CnnbenchCLI, base_args, read_metrics

HOOK = "--trainer.plugins=tests.helpers.callbacks.StopAfterSave"


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """A failed test leaves no stopped fit behind."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def start(args: list[str], tmp_path: Path, stop_after: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "CNNBENCH_CACHE_DIR": str(tmp_path / "cache")}
    if stop_after:
        env["CNNBENCH_TEST_STOP_AFTER"] = stop_after
    process = subprocess.Popen([sys.executable, "-m", "cnnbench", "fit", *args], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    STARTED.append(process)
    return process


def stopped(process: subprocess.Popen) -> bool:
    """Whether ``process`` has stopped itself (SIGSTOP): state T in /proc (an ended process has not)."""
    if process.poll() is not None:  # ended, and reaped: its /proc entry is gone
        return False
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def wait_for(condition, timeout: float = 180.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def one_epoch_run(cifar_dir: Path, tmp_path: Path) -> tuple[list[str], Path]:
    """The options of a 3-epoch fit resuming a 1-epoch run, and that run's folder."""
    root = tmp_path / "runs"
    run_dir = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1")]).run_dir
    return base_args(cifar_dir, root, "--trainer.max_epochs=3", "--ckpt_path=last"), run_dir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_fits_of_one_run_started_together_one_proceeds(one_epoch_run, tmp_path: Path) -> None:  # noqa: ANN001
    args, run_dir = one_epoch_run
    # Both stop themselves right after their first last.ckpt, lock held: the loser cannot arrive after the winner ends.
    first, second = (start([*args, HOOK], tmp_path, stop_after="last.ckpt") for _ in range(2))
    processes = {first, second}
    wait_for(lambda: any(p.poll() is not None for p in processes) and any(stopped(p) for p in processes))
    (loser,) = [p for p in processes if p.poll() is not None]
    (winner,) = processes - {loser}
    err = loser.stderr.read()
    assert loser.returncode == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    assert f"run {run_dir} is being written by host {socket.gethostname()} pid {winner.pid}" in line
    os.kill(winner.pid, signal.SIGCONT)
    winner.communicate(timeout=240)
    assert winner.returncode == 0
    # one resume only: its config, and each epoch's rows once, in order
    assert sorted(p.name for p in run_dir.glob("config*.yaml")) == ["config.resume-1.yaml", "config.yaml"]
    epochs = [int(float(r["epoch"])) for r in read_metrics(run_dir) if r.get("train/loss_epoch") or r.get("val/acc")]
    assert epochs == sorted(epochs) and set(epochs) == {0, 1, 2}
    steps = [int(r["step"]) for r in read_metrics(run_dir)]
    assert steps == sorted(steps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_holder_leaves_no_lock_behind(one_epoch_run, tmp_path: Path) -> None:  # noqa: ANN001
    args, run_dir = one_epoch_run
    holder = start([*args, HOOK], tmp_path, stop_after="last.ckpt")
    wait_for(lambda: stopped(holder))
    assert f"pid {holder.pid}" in (run_dir / "run.lock").read_text()
    holder.kill()
    holder.wait()
    resumed = start(args, tmp_path)  # no clean-up in between
    _, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert f"pid {resumed.pid}" in (run_dir / "run.lock").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_holders_surviving_loader_worker_does_not_hold_the_run(one_epoch_run, tmp_path: Path) -> None:  # noqa: ANN001
    args, run_dir = one_epoch_run
    holder = start([*args, HOOK, "--data.fast=false", "--data.num_workers=1"], tmp_path, stop_after="last.ckpt")
    wait_for(lambda: stopped(holder))
    # Its data loader worker, forked while the lock was held, outlives a SIGKILLed fit by up to seconds (until it
    # notices); frozen here, it outlives it for as long as the test needs.
    workers = [int(pid) for pid in Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()]
    assert workers
    for worker in workers:
        os.kill(worker, signal.SIGSTOP)
    holder.kill()
    holder.wait()
    try:
        resumed = start(args, tmp_path)
        _, err = resumed.communicate(timeout=240)
        assert resumed.returncode == 0, err
    finally:
        for worker in workers:
            os.kill(worker, signal.SIGKILL)


def test_readers_need_no_lock(one_epoch_run, tmp_path: Path, cifar_dir: Path) -> None:  # noqa: ANN001
    args, run_dir = one_epoch_run
    hold = (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.lockf(f, fcntl.LOCK_EX); "
        "print(1, flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(run_dir / "run.lock")], stdout=subprocess.PIPE, text=True
    )
    STARTED.append(holder)
    assert holder.stdout.readline() == "1\n"  # held, as a live fit holds it
    cli = CnnbenchCLI(args=["test", *base_args(cifar_dir, tmp_path / "runs", "--ckpt_path=last")])
    assert cli.trainer.callback_metrics["test/acc"] >= 0


def test_the_refusal_names_the_new_holder_not_the_ended_one_the_file_still_names(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    path = tmp_path / "run.lock"
    path.write_text(f"host {socket.gethostname()} pid {ended.pid}\n")  # the previous holder's line
    # The new holder has the lock but writes its line a moment later.
    writer = threading.Timer(0.3, lambda: path.write_text(f"host {socket.gethostname()} pid {os.getpid()}\n"))
    writer.start()
    with open(path) as handle:
        assert read_holder(handle) == f"host {socket.gethostname()} pid {os.getpid()}"
    writer.join()
