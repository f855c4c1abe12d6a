"""W&B sees what the report sees: one group per recipe (the report's group key), job types, plain config names,
and a ``test`` of a run's checkpoint in that run's summary. Read back from the offline run files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from cnnbench.report.groups import group_key
from cnnbench.runs import best_or_last
from tests.helpers.runs import CnnbenchCLI, base_args, main, read_csv
from tests.helpers.wandb_records import read_run


def runs_with_id(run_dir: Path, run_id: str) -> list[dict]:
    """Every offline run file of this W&B id in the run folder (a resumed id writes a folder of its own)."""
    return [read_run(f) for f in sorted(run_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))]


def key_paths(config: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in config.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def test_two_seeds_and_a_test_are_one_wandb_group_with_the_test_in_the_fit_runs_summary(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    root = tmp_path / "runs"
    fits = []
    for seed in (1, 2):
        args = base_args(cifar_dir, root, "--trainer.max_epochs=1", "--wandb.enabled=true", f"--seed_everything={seed}")
        cli = CnnbenchCLI(args=["fit", *args])
        cli.trainer.loggers[-1].experiment.finish()  # what the process exit does
        fits.append(cli.run_dir)
    checkpoint = best_or_last(fits[0])
    test_args = base_args(cifar_dir, root, "--wandb.enabled=true", f"--ckpt_path={checkpoint}")
    tested = CnnbenchCLI(args=["test", *test_args])
    tested.trainer.loggers[-1].experiment.finish()
    assert tested.run_dir == fits[0]

    main(["report", str(root), f"--out={tmp_path / 'report'}", "--figures=none"])
    header, *rows = read_csv(tmp_path / "report" / "groups.csv")
    assert len(rows) == 1  # two seeds of one recipe: one row of the report
    report_group = dict(zip(header, rows[0], strict=True))["group"]
    assert report_group == group_key(yaml.safe_load((fits[1] / "config.yaml").read_text()))

    fit_ids = [f"cifar10-simple_cnn-{d.name}" for d in fits]
    for run_dir, run_id, seed in zip(fits, fit_ids, (1, 2), strict=True):
        (fit, *resumed) = runs_with_id(run_dir, run_id)
        assert fit["run"][2] == report_group and fit["job_type"] == "fit"
        config = fit["config"]
        assert config["model"]["lr"] == 0.05 and config["data"]["batch_size"] == 16
        assert config["seed_everything"] == seed and config["trainer"]["max_epochs"] == 1
        assert not any("init_args" in path for path in key_paths(config))
        if run_dir != fits[0]:
            assert resumed == [] and "test/acc" not in fit["summary"]

    # The test: a run of its own (job type test) in the same group ...
    (test_file,) = fits[0].glob("wandb/offline-run-*-*-test-*/run-*.wandb")
    test_run = read_run(test_file)
    assert test_run["run"][1].startswith(f"{fit_ids[0]}-test-")
    assert test_run["run"][2] == report_group and test_run["job_type"] == "test"
    # ... whose accuracy is in the fit run's summary: a second offline folder of the fit run's id, which wandb sync
    # uploads into that same run (resumed), keeping its group and job type.
    _, summary_update = runs_with_id(fits[0], fit_ids[0])
    assert summary_update["run"][2] == report_group and summary_update["job_type"] == "fit"
    with open(next(fits[0].glob("test-*/metrics.csv")), newline="") as f:
        test_acc = [float(r["test/acc"]) for r in csv.DictReader(f) if r.get("test/acc")]
    assert summary_update["summary"]["test/acc"] == pytest.approx(test_acc[-1])
    assert summary_update["summary"]["test/run"] == test_run["run"][1]


def test_a_sweeps_trials_carry_their_study_as_a_wandb_tag(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep = tmp_path / "lrs.yaml"
    sweep.write_text(yaml.safe_dump({
        "study": "lrs", "sampler": "grid", "space": {"model.lr": {"grid": [0.05]}},
        "args": base_args(cifar_dir, tmp_path / "runs", "--trainer.max_epochs=1", "--wandb.enabled=true"),
    }))  # fmt: skip
    main(["sweep", str(sweep)])
    (run_file,) = (tmp_path / "runs" / "lrs").glob("trial-0000/*/wandb/offline-run-*/run-*.wandb")
    run = read_run(run_file)
    assert {"study:lrs", "trial:0"} <= set(run["run"][3]) and run["job_type"] == "fit"
    config_file = run_file.parents[2] / "config.yaml"
    assert run["run"][2] == group_key(yaml.safe_load(config_file.read_text()))
