"""One run over two "nodes" on this machine (torchrun, gloo, one process each): one run folder, SIGTERM and resume,
and the weights of one process training on the same global batch. And a 2-node SLURM job's environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnbench import runs
from tests.helpers.runs import CnnbenchCLI, base_args

TIMEOUT = 300  # a hang fails the test instead of blocking it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(cifar_dir: Path, root: Path, *extra: str, signal_at: str = "") -> list[subprocess.CompletedProcess]:
    """``cnnbench fit`` under two torchrun agents, node ranks 0 and 1, as on two machines."""
    port = free_port()
    args = base_args(cifar_dir, root, "--trainer.strategy=ddp", "--trainer.num_nodes=2", "--trainer.devices=1",
                     "--trainer.callbacks+=tests.helpers.callbacks.SignalAt", *extra)  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNBENCH_TEST_SIGNAL": signal_at}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                "--master-addr=127.0.0.1", f"--master-port={port}"]  # fmt: skip
    command = ["-m", "cnnbench", "fit", *args]
    nodes = [
        subprocess.Popen(
            [*torchrun, f"--node-rank={node}", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=TIMEOUT)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    return [subprocess.CompletedProcess(n.args, n.returncode, out) for n, out in zip(nodes, outputs, strict=True)]


@pytest.mark.slow
def test_two_torchrun_nodes_train_one_run_stop_resume_and_match_one_process(cifar_dir: Path, tmp_path: Path) -> None:
    # Both workers get SIGTERM (as SLURM signals every task) in epoch 1; the ranks agree and save the same step.
    stopped = two_nodes(cifar_dir, tmp_path / "nodes", "--trainer.max_epochs=3", signal_at="0:on_train_batch_start:4,"
                        "1:on_train_batch_start:4")  # fmt: skip
    for node in stopped:
        assert "cnnbench: stopped by SIGTERM" in node.stdout, node.stdout[-3000:]
    (run_dir,) = (tmp_path / "nodes" / "cifar10-simple_cnn").iterdir()  # one run folder for both nodes
    # 80 train images over 2 ranks: 3 batches of 16 per epoch; the signal of step 5 is agreed at step 6, the
    # epoch's last batch, so the stop waits for the next batch.
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 7
    resumed = two_nodes(cifar_dir, tmp_path / "nodes", "--trainer.max_epochs=3", "--ckpt_path=auto")
    assert [node.returncode for node in resumed] == [0, 0], resumed[0].stdout[-3000:] + resumed[1].stdout[-3000:]
    assert [p.name for p in (tmp_path / "nodes" / "cifar10-simple_cnn").iterdir()] == [run_dir.name]
    final = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert final["global_step"] == 9

    # One process, batches of 32: each step sees the two ranks' 16 + 16 images (and DDP averages their gradients).
    single = CnnbenchCLI(
        args=["fit", *base_args(cifar_dir, tmp_path / "single", "--trainer.max_epochs=3", "--data.batch_size=32")]
    )
    expected = {name: p.detach() for name, p in single.model.named_parameters()}  # the weights (no metric states)
    assert expected
    for name, tensor in expected.items():
        torch.testing.assert_close(final["state_dict"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_a_two_node_slurm_jobs_ranks_share_one_run_and_lightning_reads_the_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.fabric.plugins.environments import SLURMEnvironment

    job = {"SLURM_JOB_ID": "9001", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1",
           "SLURM_NNODES": "2", "SLURM_NODELIST": "gpu[07-08]", "SLURM_JOB_NAME": "cnnbench"}  # fmt: skip
    seen = []
    for node in (0, 1):  # srun starts one task per node: the same job, step, and variables but the ranks
        for name, value in {**job, "SLURM_PROCID": str(node), "SLURM_LOCALID": "0", "SLURM_NODEID": str(node)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CNNBENCH_RUN_ID", raising=False)
        environment = SLURMEnvironment()
        seen.append((runs.new_run_id(tmp_path), environment.global_rank(), environment.node_rank(),
                     environment.world_size(), environment.main_address))  # fmt: skip
    assert seen == [("slurm-9001-step0", 0, 0, 2, "gpu07"), ("slurm-9001-step0", 1, 1, 2, "gpu07")]
    assert not any(tmp_path.iterdir())  # deriving the id writes nothing (no claim files of srun steps)


def test_the_sbatch_script_starts_one_ddp_task_per_gpu_with_auto_resume(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "scripts/slurm/fit.sbatch"
    (tmp_path / "srun").write_text('#!/bin/sh\necho "$@"\n')  # what srun would start on every task
    (tmp_path / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "SLURM_NNODES": "2",
           "SLURM_NTASKS_PER_NODE": "4(x2)"}  # fmt: skip
    done = subprocess.run(["bash", str(script), "--config", "c.yaml"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cnnbench", "fit", "--ckpt_path", "auto", "--trainer.accelerator", "gpu",
                                   "--trainer.strategy", "ddp", "--trainer.devices", "4", "--trainer.num_nodes", "2",
                                   "--config", "c.yaml"]  # fmt: skip
    assert "#SBATCH --signal=SIGUSR1@90" in script.read_text()
