"""``cnnbench lr_find``: Lightning's range test on the CLI's model and data, its plot in a run folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.helpers.runs import base_args, main


def test_lr_find_saves_its_plot_and_prints_the_option(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    main(["lr_find", "--num_training=20", "--min_lr=1e-4", "--max_lr=1.0", *base_args(cifar_dir, root)])
    (run_dir,) = (root / "lr_find").iterdir()
    assert (run_dir / "lr_find.png").stat().st_size > 0
    with open(run_dir / "lr_find.csv", newline="") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert len(lrs) >= 2 and lrs == sorted(lrs) and 1e-4 <= lrs[0] < lrs[-1] <= 1.0  # an increasing LR range
    assert not (run_dir / "checkpoints").exists()  # the test's steps leave nothing a --ckpt_path could resume
    out = capsys.readouterr().out
    assert str(run_dir / "lr_find.png") in out
    suggested = float(out.split("--model.init_args.lr ")[1].split()[0])
    assert lrs[0] <= suggested <= lrs[-1]
