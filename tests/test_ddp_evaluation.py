"""``test`` and ``predict`` under DDP (gloo, 2 processes): each image counted once, results equal to one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.data.sampling import EvalShardSampler
from tests.helpers.datasets import write_cifar10
from tests.helpers.runs import CnnbenchCLI, TrainedRun, base_args, read_csv, read_metrics

DDP = ("--trainer.strategy=ddp", "--trainer.devices=2")
ODD_TEST_SPLIT = 31  # not divisible by 2 ranks: Lightning's own sampler would repeat one image to even the shares


def test_each_image_goes_to_exactly_one_rank_in_order() -> None:
    shares = [list(EvalShardSampler(range(7), num_replicas=3, rank=r)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(EvalShardSampler(range(7), num_replicas=3, rank=r)) for r in range(3)] == [3, 2, 2]


def new_folders(run_dir: Path, before: set[Path], prefix: str) -> list[Path]:
    return sorted(set(run_dir.glob(f"{prefix}-*")) - before)


@pytest.mark.slow
@pytest.mark.parametrize("subcommand", ["test", "predict"])
def test_two_processes_evaluate_every_image_once_as_one_process_does(
    subcommand: str, fitted: TrainedRun, tmp_path: Path
) -> None:
    _, root, run_dir = fitted
    data_dir = tmp_path / "odd"
    write_cifar10(data_dir, seed=1, test_size=ODD_TEST_SPLIT)  # new images: the run never saw them
    (checkpoint,) = run_dir.glob("checkpoints/best-*.ckpt")
    args = base_args(data_dir, root, f"--ckpt_path={checkpoint}")
    single = CnnbenchCLI(args=[subcommand, *args]).log_dir
    before = set(run_dir.glob(f"{subcommand}-*"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "cnnbench", subcommand, *args, *DDP]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (ddp,) = new_folders(run_dir, before | {single}, subcommand)  # one folder for both ranks

    if subcommand == "predict":
        expected, got = read_csv(single / "predictions.csv"), read_csv(ddp / "predictions.csv")
        assert [row[0] for row in got[1:]] == [str(i) for i in range(ODD_TEST_SPLIT)]  # each image once, in order
        assert [row[:3] for row in got] == [row[:3] for row in expected]
        for mine, theirs in zip(got[1:], expected[1:], strict=True):
            assert [float(x) for x in mine[3:] if x[0].isdigit()] == pytest.approx(
                [float(x) for x in theirs[3:] if x[0].isdigit()], abs=2e-6
            )
        return
    # The test metrics are the whole split's, as one process computes them (repeated images would shift them).
    for name in ("test/acc", "test/loss", "test/acc_top5"):
        (one,) = [float(r[name]) for r in read_metrics(single) if r.get(name)]
        (two,) = [float(r[name]) for r in read_metrics(ddp) if r.get(name)]
        assert two == pytest.approx(one, rel=1e-6), name
    matrix = read_csv(ddp / "confusion_matrix.csv")
    assert matrix == read_csv(single / "confusion_matrix.csv")
    assert sum(int(x) for row in matrix[1:] for x in row[1:]) == ODD_TEST_SPLIT
    assert (ddp / "confusion_matrix.png").is_file() and (ddp / "predictions.png").is_file()
