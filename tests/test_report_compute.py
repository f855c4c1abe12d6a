"""``cnnbench report``'s compute: training at 3x the forward FLOPs per image, plus evaluation with its TTA passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnbench.models.registry import create_model
from cnnbench.models.summary import describe, measure
from cnnbench.report.compute import eval_pflops, planned_pflops
from tests.helpers.runs import CnnbenchCLI, base_args, main, read_csv

TTA = {"flip_tta": True, "translate_tta": True, "tta_uncertain_fraction": 0.25}


def test_planned_compute_is_training_plus_every_evaluation_pass() -> None:
    train, evaluation = planned_pflops(TTA, mflops=100.0, dataset="cifar10", train_images=50_000, epochs=8,
                                       batch_size=2000)  # fmt: skip
    assert train == pytest.approx(3 * 100e6 * 50_000 * 8 / 1e15)
    # 10,000 test images in 5 batches of 2000: each image's plain pass, 500 per batch get the other 5 views.
    assert evaluation == pytest.approx(100e6 * (10_000 + 5 * 500 * 5) / 1e15)
    assert eval_pflops({}, 100.0, 2000, val_images=100, val_epochs=3, test_images=0) == pytest.approx(3e-5)


def test_report_counts_evaluation_with_its_tta_passes(cifar_dir: Path, tmp_path: Path) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    options = ("--model.flip_tta=true", "--model.translate_tta=true", "--model.tta_uncertain_fraction=0.25",
               "--trainer.max_epochs=2", "--trainer.num_sanity_val_steps=0")  # fmt: skip
    fit = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, *options)])
    last = fit.run_dir / "checkpoints/last.ckpt"
    CnnbenchCLI(args=["test", *base_args(cifar_dir, root, *options, f"--ckpt_path={last}")])
    main(["report", str(root), f"--out={out}", "--figures=none"])
    header, row = read_csv(out / "groups.csv")
    row = dict(zip(header, row, strict=True))
    data = json.loads((fit.run_dir / "environment.json").read_text())["data"]
    assert data["val_images"] == 20
    mflops = describe("simple_cnn", 3, 32, 10).mflops
    accs = [float(r["val/acc"]) for r in read_csv_dicts(fit.run_dir / "metrics.csv") if r.get("val/acc")]
    best = max(range(len(accs)), key=lambda e: (accs[e], -e))
    # 20 validation images in batches of 16 and 4: ceil(4) + ceil(1) get TTA; the test split likewise.
    val_passes = 20 + (4 + 1) * 5
    test_n = data["test_images"]
    test_passes = test_n + ((test_n // 16) * 4 + -(-(test_n % 16) // 4)) * 5
    expected = mflops * 1e6 * ((best + 1) * val_passes + test_passes) / 1e15
    assert float(row["eval PFLOPs"]) == pytest.approx(expected, rel=0.01)
    assert float(row["PFLOPs (train + eval)"]) == pytest.approx(float(row["train PFLOPs to best"]) + expected, rel=0.01)
    assert "3x the forward FLOPs" in (out / "groups.md").read_text()
    # A later test without TTA is the one reported: its evaluation counts one pass per test image.
    plain = ("--model.flip_tta=false", "--model.translate_tta=false")
    CnnbenchCLI(args=["test", *base_args(cifar_dir, root, *options, *plain, f"--ckpt_path={last}")])
    main(["report", str(root), f"--out={out}", "--figures=none"])
    header, row = read_csv(out / "groups.csv")
    row = dict(zip(header, row, strict=True))
    expected = mflops * 1e6 * ((best + 1) * val_passes + test_n) / 1e15
    assert float(row["eval PFLOPs"]) == pytest.approx(expected, rel=0.01)


def read_csv_dicts(path: Path) -> list[dict[str, str]]:
    header, *rows = read_csv(path)
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_report_counts_the_network_as_built_and_a_step_limited_last_epoch_by_its_share(
    cifar_dir: Path, tmp_path: Path
) -> None:
    # No validation split: the last epoch is the best. 100 training images in batches of 16 are 7 steps an epoch;
    # 10 steps end in epoch 1 after 3 of its 7 steps.
    root, out = tmp_path / "runs", tmp_path / "report"
    options = ("--model.channels=4", "--data.val_size=0", "--trainer.max_epochs=-1", "--trainer.max_steps=10")
    fit = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, *options)])
    main(["report", str(root), f"--out={out}", "--figures=none"])
    header, row = read_csv(out / "groups.csv")
    row = dict(zip(header, row, strict=True))
    built = measure(create_model("simple_cnn", channels=4), "simple_cnn", 3, 32)
    assert built.mflops < describe("simple_cnn", 3, 32, 10).mflops  # the registry's default has 16 channels
    assert json.loads((fit.run_dir / "environment.json").read_text())["model"]["mflops"] == round(built.mflops, 2)
    assert float(row["MFLOPs"]) == pytest.approx(built.mflops, abs=0.05)
    assert int(row["params"].replace(",", "")) == built.params
    expected = 3 * round(built.mflops, 2) * 1e6 * 100 * (1 + 3 / 7) / 1e15
    assert float(row["train PFLOPs to best"]) == pytest.approx(expected, rel=0.01)
