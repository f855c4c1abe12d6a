"""Any Lightning logger given with --trainer.logger writes into the run folder and gets the config and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.runs import CnnbenchCLI, base_args, column, read_metrics

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
REPO = Path(__file__).parents[1]


def read_events(folder: Path) -> event_accumulator.EventAccumulator:
    (events,) = folder.glob("events.out.tfevents.*")
    reader = event_accumulator.EventAccumulator(str(events), size_guidance={event_accumulator.IMAGES: 0})
    reader.Reload()
    return reader


def test_tensorboard_logs_into_the_run_folder_with_config_metrics_and_test_figures(
    cifar_dir: Path, tmp_path: Path
) -> None:
    args = base_args(cifar_dir, tmp_path, "--trainer.max_epochs=2", "--trainer.logger=TensorBoardLogger")
    fit = CnnbenchCLI(args=["fit", *args])
    events = read_events(fit.run_dir / "tensorboard")
    expected = column(read_metrics(fit.run_dir), "val/acc")
    assert [e.step for e in events.Scalars("val/acc")] == [step for step, _ in expected]
    assert [e.value for e in events.Scalars("val/acc")] == pytest.approx([value for _, value in expected])
    hparams = (fit.run_dir / "tensorboard" / "hparams.yaml").read_text()  # the resolved config, flattened
    assert "trainer/max_epochs: 2" in hparams and "data/dataset: cifar10" in hparams and "model/params:" in hparams

    # A config file names the logger too; the test's own folder gets the figures as images.
    test_args = base_args(
        cifar_dir, tmp_path, "--ckpt_path=best", f"--config={REPO / 'configs/logger/tensorboard.yaml'}"
    )
    test = CnnbenchCLI(args=["test", *test_args])
    assert test.log_dir.parent == fit.run_dir
    images = read_events(test.log_dir / "tensorboard").Tags()["images"]
    assert sorted(images) == ["test/confusion_matrix", "test/predictions"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10-simple_cnn", "data"]  # nothing outside the run
