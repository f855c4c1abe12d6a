"""Crash-proof training: real kills of ``cnnbench fit`` at random moments, then resumes, give the uninterrupted run."""

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

from tests.helpers.runs import (
    STEPS_PER_EPOCH,
    CnnbenchCLI,
    TrainedRun,
    assert_same_tensors,
    base_args,
    column,
    expected_lr,
    fit_straight_and_resumed,
    read_metrics,
)

EPOCHS = 4  # 5 steps per epoch on the tiny data
# Mid-epoch saves (every 2 steps) and dropout + augmentation, so that order, RNG and metric state all matter.
RUN_ARGS = (
    f"--trainer.max_epochs={EPOCHS}",
    "--trainer.deterministic=true",
    "--checkpoint.last_every_n_steps=2",
    "--data.augment=crop_flip",
    "--data.num_workers=1",
)

# A model with dropout (its masks come from the global torch RNG that RNGStateCheckpoint restores) on both data
# paths: the in-memory one draws augmentation from sampler seeds, the per-image one runs in worker processes.
DROPOUT_ARGS = ("--model=alexnet_cifar7", "--model.dropout=0.5", "--data.image_size=16")
DATA_PATHS = {"fast": ("--data.fast=true",), "per-image": ("--data.fast=false", "--data.num_workers=1")}


def fit_command(data_dir: Path, root: Path, *extra: str) -> list[str]:
    args = base_args(data_dir, root, *RUN_ARGS, *extra)
    if any(arg.startswith("--model=") for arg in extra):  # another model than base_args' simple_cnn
        args.remove("--model=simple_cnn")
    return [sys.executable, "-m", "cnnbench", "fit", *args]


def run_dir(root: Path) -> Path:
    (folder,) = root.glob("cifar10-*/*")
    return folder


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def last_checkpoint_version(root: Path) -> tuple[int, int] | None:
    """(inode, modification time) of the run's last.ckpt: a new save replaces the file, so both change."""
    for last in root.glob("*/*/checkpoints/last.ckpt"):
        stat = last.stat()
        return stat.st_ino, stat.st_mtime_ns
    return None


def saved_step_since(root: Path, old: tuple[int, int] | None) -> int:
    """The global step of the run's last.ckpt if it replaced the version ``old``, else -1."""
    if last_checkpoint_version(root) in (None, old):
        return -1
    (last,) = root.glob("*/*/checkpoints/last.ckpt")
    return torch.load(last, map_location="cpu", weights_only=True)["global_step"]


def stop_outside_the_row_gap(root: Path, process: subprocess.Popen, expected_dir: Path) -> None:
    """Freeze the run (SIGSTOP) at a moment when every row before its last.ckpt's step is written (as the
    uninterrupted run in ``expected_dir`` has them).

    Known gap: Lightning writes a step's metrics after the batch-end (and epoch-end) hooks, where last.ckpt is
    saved, so a kill in the milliseconds between the two loses those rows (the weights still resume exactly).
    The random kills here land outside that gap; frozen, the run cannot enter it before the SIGKILL.
    """
    for _ in range(500):
        process.send_signal(signal.SIGSTOP)
        (last,) = root.glob("*/*/checkpoints/last.ckpt")
        step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        rows, expected = read_metrics(last.parents[1]), read_metrics(expected_dir)
        if all(
            [r for r in column(rows, name) if r[0] < step] == [r for r in column(expected, name) if r[0] < step]
            for name in ("train/lr", "train/loss", "val/acc")
        ):
            return
        process.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise TimeoutError("the run never logged the step of its checkpoint")


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll until ``condition()`` holds; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError("the run neither reached the state nor ended")


@pytest.mark.slow
def test_random_kills_and_resumes_give_the_uninterrupted_run(cifar_dir: Path, tmp_path: Path) -> None:
    # Every checkpoint write pauses halfway for 0.2 s (tests/helpers/slow_checkpoint_writes.py), in both runs.
    slow = [sys.executable, "-m", "tests.helpers.slow_checkpoint_writes", "0.2"]
    straight_root, model = tmp_path / "straight", (*DROPOUT_ARGS, *DATA_PATHS["per-image"])
    subprocess.run([*slow, *fit_command(cifar_dir, straight_root, *model)[3:]], check=True, capture_output=True)
    expected_dir = run_dir(straight_root)

    root, rng, kills, kills_mid_write = tmp_path / "killed", random.Random(0), 0, 0
    command = [*slow, *fit_command(cifar_dir, root, *model, "--ckpt_path=auto")[3:]]
    for attempt in range(8):
        before = last_checkpoint_version(root)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt == 4:  # the last run goes to the end
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err.decode()[-2000:]
            break
        # Each kill waits for evidence that this process trained: a checkpoint it is writing (its pid names the
        # temporary file) or one it wrote (last.ckpt replaced), not one a previous attempt left.
        if attempt % 2 == 0:  # kill while a checkpoint is half written over an existing one (writes pause halfway)
            reached = wait_for(
                lambda pid=process.pid: (
                    any(root.glob("*/*/checkpoints/last.ckpt")) and any(root.glob(f"*/*/checkpoints/.*.{pid}.tmp"))
                ),
                process,
            )
        else:  # kill at a random moment after this process saved a random step, with steps still ahead of it
            target = rng.randint(4, 8) if attempt == 1 else rng.randint(11, 13)  # of 20; saves every 2 steps
            reached = wait_for(lambda old=before, t=target: saved_step_since(root, old) >= t, process)
            time.sleep(rng.uniform(0.0, 0.3))  # shorter than the 3+ slowed saves left before the run's end
        if process.poll() is not None:  # it had to be killed: it cannot have trained to the end
            raise AssertionError(f"attempt {attempt} ended by itself: {process.stderr.read().decode()[-2000:]}")
        if attempt % 2 == 1:
            stop_outside_the_row_gap(root, process, expected_dir)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        kills_mid_write += attempt % 2 == 0 and reached
        # What a kill leaves must load: last.ckpt is always complete (never a half-written file).
        for last in root.glob("*/*/checkpoints/last.ckpt"):
            weights(last)
    print(f"kills: {kills} ({kills_mid_write} during a checkpoint write), resumes: {attempt}")
    assert kills == 4 and kills_mid_write >= 1

    resumed_dir = run_dir(root)  # one run folder: every resume continued it
    assert_same_tensors(weights(expected_dir / "checkpoints/last.ckpt"), weights(resumed_dir / "checkpoints/last.ckpt"))
    # The logged curves continue without a gap or a repeat, and equal the uninterrupted run's.
    for name in ("train/lr", "train/loss_step", "val/acc", "train/loss"):
        assert column(read_metrics(resumed_dir), name) == column(read_metrics(expected_dir), name), name
    # The same best checkpoints: a resume never deleted a better one.
    assert sorted(p.name for p in (resumed_dir / "checkpoints").glob("best-*.ckpt")) == sorted(
        p.name for p in (expected_dir / "checkpoints").glob("best-*.ckpt")
    )


@pytest.mark.slow
def test_sigterm_saves_the_current_step_and_exits_for_a_requeue(cifar_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    # No periodic mid-epoch saves: the only mid-epoch checkpoint can come from the SIGTERM handler. No validation
    # either, so that the signal lands in training (a SIGTERM during validation stops without a new save).
    command = fit_command(
        cifar_dir, tmp_path, "--checkpoint.last_every_n_steps=0", "--trainer.max_epochs=50",
        "--trainer.check_val_every_n_epoch=1000",
    )  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: any(tmp_path.glob("*/*/checkpoints/last.ckpt")), process)
    # The first epoch-end save is step 5's; the signal comes once a later step is logged (trained past that save).
    wait_for(lambda: any(step >= 5 for step, _ in column(read_metrics(run_dir(tmp_path)), "train/lr")), process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err.decode()[-2000:]
    checkpoint = torch.load(run_dir(tmp_path) / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    # Saved at the step where it stopped, after the first epoch-end save; nothing later was trained.
    assert checkpoint["global_step"] > 5
    assert f"saved the state of step {checkpoint['global_step']} " in err.decode()
    assert max(step for step, _ in column(read_metrics(run_dir(tmp_path)), "train/lr")) < checkpoint["global_step"]


# Optimizers whose state must survive the resume: Muon's momentum buffers and its renormalization step count too.
OPTIMIZERS = {"sgd": (), "muon": ("--model.optimizer=muon", "--model.muon_renorm_every=2")}


@pytest.mark.parametrize(("data_path", "optimizer"), [("fast", "sgd"), ("per-image", "sgd"), ("fast", "muon")])
def test_mid_epoch_resume_in_process_gives_the_uninterrupted_weights(
    cifar_dir: Path, tmp_path: Path, data_path: str, optimizer: str
) -> None:
    """A run stopped mid-epoch and resumed from its ``last.ckpt`` trains what a straight run trains: the same data
    order, augmentation, dropout masks and optimizer state."""

    def fit(root: Path, *extra: str) -> CnnbenchCLI:
        args = base_args(cifar_dir, root, *RUN_ARGS, *DATA_PATHS[data_path], *DROPOUT_ARGS, *OPTIMIZERS[optimizer],
                         *extra)  # fmt: skip
        return CnnbenchCLI(args=["fit", *(a for a in args if a != "--model=simple_cnn"), "--trainer.max_epochs=2"])

    straight = fit(tmp_path / "straight")
    stopped = fit(tmp_path / "resumed", "--trainer.max_steps=7")
    state = torch.load(stopped.run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 7
    # The loader state names the epoch and the batches already trained on.
    assert state["ImageDataModule"]["train_loader"] == {"epoch": 1, "batches": 2, "seed": 42}
    resumed = fit(tmp_path / "resumed", "--ckpt_path=last")
    assert resumed.run_dir == stopped.run_dir and resumed.trainer.global_step == 2 * STEPS_PER_EPOCH
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())


def test_train_batches_do_not_depend_on_worker_count(cifar_dir: Path) -> None:
    from cnnbench.data import ImageDataModule

    def first_batches(num_workers: int) -> list[torch.Tensor]:
        dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, num_workers=num_workers, fast=False)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)
        return [images for images, _ in loader]

    reference, other = first_batches(0), first_batches(2)
    assert len(reference) == 5 and all(torch.equal(a, b) for a, b in zip(reference, other, strict=True))


@pytest.mark.slow
def test_slurm_requeue_signal_saves_and_the_requeued_job_resumes_in_its_folder(cifar_dir: Path, tmp_path: Path) -> None:
    """Lightning's SLURM handling: SIGUSR1 saves hpc_ckpt_1.ckpt and asks for a requeue; the same job id resumes."""
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "cnnbench", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}  # fmt: skip
    env = {**os.environ, **slurm}
    command = fit_command(cifar_dir, tmp_path, "--checkpoint.last_every_n_steps=0", "--trainer.max_epochs=50")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = tmp_path / "cifar10-simple_cnn" / "slurm-4242"
    wait_for(lambda: (folder / "checkpoints" / "last.ckpt").exists(), process)
    process.send_signal(signal.SIGUSR1)
    wait_for(lambda: (folder / "hpc_ckpt_1.ckpt").exists(), process)
    saved_step = torch.load(folder / "hpc_ckpt_1.ckpt", map_location="cpu", weights_only=True)["global_step"]
    # Lightning writes the saved step's metrics just after the batch end hooks, well inside SLURM's grace time.
    wait_for(lambda: saved_step - 1 in [step for step, _ in column(read_metrics(folder), "train/lr")], process)
    process.send_signal(signal.SIGKILL)  # what SLURM does at the time limit
    process.wait()

    requeued = fit_command(cifar_dir, tmp_path, "--trainer.max_epochs=3")
    # SLURM counts the requeues: the restarted job continues its folder, any other fit of the job gets its own.
    done = subprocess.run(
        requeued, env={**env, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Restoring states from the checkpoint path at {folder / 'hpc_ckpt_1.ckpt'}" in done.stderr
    assert [p.name for p in folder.parent.iterdir()] == ["slurm-4242"]
    steps = [step for step, _ in column(read_metrics(folder), "train/lr")]
    # Every optimizer step logged once, none skipped: the hpc checkpoint was taken at a batch end (LatestCheckpoint
    # defers Lightning's handler there), not wherever the step was when the signal came.
    assert steps == list(range(15)) and saved_step > 0
    epoch_seconds = [seconds for _, seconds in column(read_metrics(folder), "train/epoch_s")]
    # The resumed epoch is timed from the resume (it has no row when the save came at its last batch: no images).
    assert 2 <= len(epoch_seconds) <= 3 and max(epoch_seconds) < 60
    assert torch.load(folder / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 15


def test_resume_from_last_with_more_epochs_continues_the_run(fitted: TrainedRun) -> None:
    data_dir, root, run_dir = fitted
    cli = CnnbenchCLI(args=["fit", *base_args(data_dir, root, "--trainer.max_epochs=3", "--ckpt_path=last")])
    assert cli.run_dir == run_dir
    assert len(list((root / "cifar10-simple_cnn").iterdir())) == 1
    assert cli.trainer.current_epoch == 3 and cli.trainer.global_step == 3 * STEPS_PER_EPOCH
    assert (cli.run_dir / "config.yaml").exists() and (cli.run_dir / "config.resume-1.yaml").exists()

    rows = read_metrics(cli.run_dir)
    lrs = dict(column(rows, "train/lr"))
    resumed_steps = [s for s, _ in column(rows, "train/lr") if s >= 2 * STEPS_PER_EPOCH]
    assert resumed_steps == list(range(2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH))  # no gap, no repeat
    total = 3 * STEPS_PER_EPOCH
    for step in resumed_steps:
        assert lrs[step] == pytest.approx(expected_lr(step, total))
    assert [int(r["epoch"]) for r in rows if r.get("val/acc")] == [0, 1, 2]
    # The best accuracy tracker came back with the checkpoint: after the resume it is the best of all three epochs,
    # those before the resume included (a tracker restarted at the resume would hold epoch 2's alone).
    val_acc = [v for _, v in column(rows, "val/acc")]
    assert max(val_acc[:2]) > val_acc[2]  # so a tracker that forgot the first two epochs fails the next line
    assert float(cli.model.val_acc_best.compute()) == pytest.approx(max(val_acc), abs=1e-6)
    assert [v for _, v in column(rows, "val/acc_best")] == pytest.approx(
        [max(val_acc[: i + 1]) for i in range(3)], abs=1e-6
    )


def test_resume_at_an_epoch_boundary_gives_the_uninterrupted_weights(cifar_dir: Path, tmp_path: Path) -> None:
    # Constant LR: the schedule does not depend on max_epochs, so both runs can be compared step for step.
    common = ("--model.lr_schedule=constant", "--model.warmup_epochs=0", "--trainer.deterministic=true")
    straight, resumed = fit_straight_and_resumed(
        cifar_dir, tmp_path, common, stop="--trainer.max_epochs=2", end=["--trainer.max_epochs=3"]
    )
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())
    # The epoch means start afresh after an epoch-end checkpoint (their running sums are in it).
    for metric in ("train/loss", "train/acc"):
        assert column(read_metrics(resumed.run_dir), metric) == column(read_metrics(straight.run_dir), metric)
