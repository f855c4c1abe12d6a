"""``cnnbench report`` of repeated runs: seeds grouped (mean ± std, 95% CI), mixed data refused."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import yaml
from matplotlib.figure import Figure

from cnnbench.models.summary import describe
from tests.helpers.runs import CnnbenchCLI, base_args, fake_run, main, read_csv, read_metrics


def test_a_grid_over_three_seeds_is_one_report_row(
    cifar_dir: Path, tmp_path: Path, saved_figures: dict[str, Figure]
) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    sweep = tmp_path / "seeds.yaml"
    sweep.write_text(yaml.safe_dump({
        "study": "seeds", "sampler": "grid", "space": {"seed_everything": {"grid": [0, 1, 2]}},
        "args": base_args(cifar_dir, root, "--trainer.max_epochs=2"),
    }))  # fmt: skip
    main(["sweep", str(sweep)])
    main(["report", str(root / "seeds"), f"--out={out}", "--figures=none"])
    header, *rows = read_csv(out / "groups.csv")
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["n"] == "3"
    run_dirs = sorted(p.parent for p in (root / "seeds").rglob("metrics.csv") if (p.parent / "config.yaml").is_file())
    assert len(run_dirs) == 3
    best = [100 * max(float(r["val/acc"]) for r in read_metrics(d) if r.get("val/acc")) for d in run_dirs]
    mean, std = statistics.fmean(best), statistics.stdev(best)
    assert row["best val acc"] == f"{mean:.2f} ± {std:.2f}"
    half = 4.303 * std / math.sqrt(3)  # Student's t, 2 degrees of freedom
    assert row["val 95% CI"] == f"[{mean - half:.2f}, {mean + half:.2f}]"
    # Training FLOPs to the best epoch: 3x the forward FLOPs of each of the 80 training images, epochs 0..best.
    best_epochs = [max(read_metrics(d), key=lambda r: float(r["val/acc"] or -1) - 1e-9 * int(r["epoch"]))["epoch"]
                   for d in run_dirs]  # fmt: skip
    mflops = describe("simple_cnn", 3, 32, 10).mflops
    pflops = [3 * mflops * 1e6 * 80 * (int(e) + 1) / 1e15 for e in best_epochs]
    assert float(row["train PFLOPs to best"]) == pytest.approx(statistics.fmean(pflops), rel=0.01)
    assert float(row["val acc / GFLOP"]) == pytest.approx(mean / (mflops / 1000), rel=0.01)
    # The group's curve is the mean of its 3 runs' val/acc at each epoch, with one band around it.
    acc_ax = saved_figures["group_curves.png"].axes[0]
    (line,) = acc_ax.get_lines()
    assert line.get_label() == "simple_cnn cifar10 (n=3)" and len(acc_ax.collections) == 1
    per_epoch = zip(
        *[[float(r["val/acc"]) for r in read_metrics(d) if r.get("val/acc")] for d in run_dirs], strict=True
    )
    assert list(line.get_ydata()) == pytest.approx([statistics.fmean(accs) for accs in per_epoch])
    assert (out / "group_curves.png").stat().st_size > 0
    _, *per_run = read_csv(out / "comparison.csv")
    assert len(per_run) == 3  # the per-run table still lists each run


def test_report_refuses_runs_of_different_validation_splits(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    for seed in (0, 1):
        CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1", f"--data.split_seed={seed}")])
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(root), f"--out={out}", "--figures=none"])
    assert exit_info.value.code == 2
    assert "used different data files or validation splits" in capsys.readouterr().err
    main(["report", str(root), f"--out={out}", "--figures=none", "--allow-mixed-data"])
    header, *rows = read_csv(out / "groups.csv")
    assert sorted(dict(zip(header, r, strict=True))["data"] for r in rows) == ["A", "B"]


def test_a_run_without_validation_counts_its_epochs_and_its_compute_to_the_final_state(
    cifar_dir: Path, tmp_path: Path
) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    args = [a for a in base_args(cifar_dir, root, "--trainer.max_epochs=3") if not a.startswith("--data.val_size")]
    main(["fit", *args, "--data.val_size=0"])
    main(["report", str(root), f"--out={out}", "--figures=none"])
    header, row = read_csv(out / "comparison.csv")
    assert dict(zip(header, row, strict=True))["epochs"] == "3"
    header, row = read_csv(out / "groups.csv")
    row = dict(zip(header, row, strict=True))
    mflops = describe("simple_cnn", 3, 32, 10).mflops
    # All 100 train images (no validation split), 3 epochs, 3x the forward FLOPs per image.
    assert float(row["train PFLOPs to best"]) == pytest.approx(3 * mflops * 1e6 * 100 * 3 / 1e15, rel=0.01)
    assert row["best val acc"] == ""


def test_a_run_short_of_its_planned_epochs_stays_out_of_its_group(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    fake_run(root / "seed0", 0.1, 0, 70.0, epochs=3, max_epochs=3)
    fake_run(root / "seed1", 0.1, 1, 74.0, epochs=3, max_epochs=3)
    fake_run(root / "seed2", 0.1, 2, 40.0, epochs=1, max_epochs=3)  # still training, or killed after one epoch
    # A resume that extended the plan: its latest config counts, so 3 epochs of a 5-epoch plan are short too.
    fake_run(root / "seed3", 0.1, 3, 75.0, epochs=3, max_epochs=3)
    (root / "seed3" / "config.resume-1.yaml").write_text(yaml.safe_dump({"trainer": {"max_epochs": 5}}))
    main(["report", str(root), f"--out={out}", "--figures=none"])
    header, *rows = read_csv(out / "groups.csv")
    (row,) = (dict(zip(header, r, strict=True)) for r in rows)
    assert row["n"] == "2" and row["best val acc"] == f"72.00 ± {statistics.stdev([70.0, 74.0]):.2f}"
    assert len(read_csv(out / "comparison.csv")) == 1 + 4  # the per-run table still lists every run
    printed = capsys.readouterr().out
    assert "left out of the groups, short of their planned epochs" in printed
    assert f"{root / 'seed2'}: 1 of 3 epochs" in printed and f"{root / 'seed3'}: 3 of 5 epochs" in printed
