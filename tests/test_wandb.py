"""What cnnbench logs to W&B, read back from the offline run file (no server, no login)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cnnbench.models.summary import describe
from cnnbench.report.groups import group_key
from tests.helpers.runs import CnnbenchCLI, base_args, column, read_metrics
from tests.helpers.wandb_records import read_run

REPO = Path(__file__).parents[1]


def test_offline_run_has_name_tags_full_config_size_and_best_val_summaries(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = [f"--config={REPO / 'configs/cifar10/simple_cnn.yaml'}", f"--config={REPO / 'configs/logger/wandb.yaml'}"]
    extra = ("--trainer.max_epochs=3", "--wandb.tags=[baseline]")
    cli = CnnbenchCLI(args=["fit", *args, *base_args(cifar_dir, tmp_path, *extra)])
    cli.trainer.loggers[-1].experiment.finish()  # what the process exit does: writes the final summary

    (run_file,) = (cli.run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run = read_run(run_file)
    name, run_id, group, tags = run["run"]
    assert re.fullmatch(r"simple_cnn-cifar10-[0-9a-f]{4}", name)
    assert group == group_key(yaml.safe_load((cli.run_dir / "config.yaml").read_text()))  # the report's group
    assert run_id == f"cifar10-simple_cnn-{cli.run_dir.name}"  # from the run folder: a resume continues it
    # Model, family (the same name here, given once), dataset, the recipe config (not the logger's), the user's.
    assert tags == ["simple_cnn", "cifar10", "recipe:cifar10/simple_cnn", "baseline"]

    config = run["config"]  # the whole resolved config, as config.yaml has it less its init_args levels
    assert config["model"]["class_path"] == "cnnbench.models.simple_cnn.SimpleCNN"
    assert config["trainer"]["max_epochs"] == 3 and config["data"]["augment"] == "flip"
    info = describe("simple_cnn", 3, 32)
    assert run["config"]["model/params"] == run["summary"]["model/params"] == info.params == 36458
    assert run["config"]["model/mflops"] == pytest.approx(info.mflops, abs=0.01)

    rows = read_metrics(cli.run_dir)
    val_acc = [acc for _, acc in column(rows, "val/acc")]
    assert len(val_acc) == 3 and run["summary"]["val/acc"] == {"max": pytest.approx(max(val_acc))}
    val_loss = [loss for _, loss in column(rows, "val/loss")]
    assert len(val_loss) == 3 and run["summary"]["val/loss"] == {"min": pytest.approx(min(val_loss))}
    logged_lr = [h["train/lr"] for h in run["history"] if "train/lr" in h]
    assert logged_lr == pytest.approx([lr for _, lr in column(rows, "train/lr")])
    assert run["summary"]["train/img_s"] > 0 and run["summary"]["train/epoch_s"] > 0


def test_test_logs_the_confusion_matrix_and_prediction_grid_to_wandb(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--trainer.max_epochs=1")])
    args = [
        "test",
        *base_args(cifar_dir, tmp_path, "--ckpt_path=best", "--wandb.enabled=true", "--wandb.log_model=true"),
    ]
    cli = CnnbenchCLI(args=args)
    assert cli.trainer.loggers[-1]._log_model is False  # offline: no artifacts
    cli.trainer.loggers[-1].experiment.finish()
    # The test is a W&B run of its own beside the training run's (tests/test_wandb_groups.py: its summary).
    (run_file,) = cli.run_dir.glob("wandb/offline-run-*-test-*/run-*.wandb")
    assert read_run(run_file)["run"][1] == f"cifar10-simple_cnn-{cli.run_dir.name}-{cli.log_dir.name}"
    logged = {key.rsplit("/", 1)[0] for row in read_run(run_file)["history"] for key in row if key.endswith("/_type")}
    logged |= {key for row in read_run(run_file)["history"] for key in row}
    assert {"test/acc", "test/confusion_matrix_table", "test/predictions"} <= logged


def test_wandb_disabled_is_skipped_and_offline_writes_a_local_run(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    args = ["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1", "--wandb.enabled=true")]
    cli = CnnbenchCLI(args=args)  # WANDB_MODE=disabled (conftest)
    assert [type(lg).__name__ for lg in cli.trainer.loggers] == ["RunCSVLogger"]

    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = CnnbenchCLI(args=args)
    assert [type(lg).__name__ for lg in cli.trainer.loggers] == ["RunCSVLogger", "WandbLogger"]
    run_id = f"cifar10-simple_cnn-{cli.run_dir.name}"
    assert list((cli.run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
