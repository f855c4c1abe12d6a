"""``cnnbench lr_find``: Lightning's range test on the CLI's model and data, its plot in a run folder."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
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
        lrs, losses = zip(*((float(r["lr"]), float(r["loss"])) for r in csv.DictReader(f)), strict=True)
    assert len(lrs) >= 2 and list(lrs) == sorted(lrs) and 1e-4 <= lrs[0] < lrs[-1] <= 1.0  # an increasing LR range
    assert not (run_dir / "checkpoints").exists()  # the test's steps leave nothing a --ckpt_path could resume
    out = capsys.readouterr().out
    assert str(run_dir / "lr_find.png") in out
    suggested = float(out.split("--model.init_args.lr ")[1].split()[0])
    assert suggested == float(f"{steepest_descent(lrs, losses):.3g}")


def steepest_descent(lrs: Sequence[float], losses: Sequence[float], skip_begin: int = 10, skip_end: int = 1) -> float:
    """The LR where the loss falls fastest (Lightning's documented rule), the first 10 and last points left out as
    too early and too late to judge, and non-finite losses ignored; float32, as Lightning computes it."""
    kept_lrs = lrs[skip_begin:-skip_end]
    lr, loss = np.asarray(kept_lrs, np.float32), np.asarray(losses[skip_begin:-skip_end], np.float32)
    finite = np.flatnonzero(np.isfinite(loss))
    return kept_lrs[finite[np.argmin(np.gradient(loss[finite], lr[finite]))]]
