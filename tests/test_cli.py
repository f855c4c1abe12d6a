"""End-to-end runs of the ``cnnbench`` CLI on tiny real-format data."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from cnnbench.runs import BEST_PATTERN
from tests.helpers.runs import (
    STEPS_PER_EPOCH,
    TRAINED_EPOCHS,
    CnnbenchCLI,
    TrainedRun,
    base_args,
    column,
    expected_lr,
    main,
    read_metrics,
)


def test_fit_writes_one_run_folder_with_checkpoints_metrics_and_config(fitted: TrainedRun) -> None:
    _, root, cli_run_dir = fitted  # the folder the fit's CLI said it wrote
    (run_dir,) = (root / "cifar10-simple_cnn").iterdir()
    assert cli_run_dir == run_dir
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == TRAINED_EPOCHS - 1 and last["global_step"] == TRAINED_EPOCHS * STEPS_PER_EPOCH
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    rows = read_metrics(run_dir)
    val_acc = [v for _, v in column(rows, "val/acc")]
    epoch, acc = BEST_PATTERN.match(best.name).groups()
    assert float(acc) == pytest.approx(max(val_acc), abs=1e-4)
    assert int(epoch) == val_acc.index(max(val_acc))
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_top5", "val/acc_best", "train/lr"):
        assert column(rows, name), f"{name} not logged"
    assert [v for _, v in column(rows, "val/acc_best")] == [max(val_acc[: i + 1]) for i in range(len(val_acc))]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["class_path"] == "cnnbench.models.simple_cnn.SimpleCNN"
    assert config["seed_everything"] == 42


def test_lr_follows_warmup_then_cosine_per_step(fitted: TrainedRun) -> None:
    _, root, _ = fitted
    (run_dir,) = (root / "cifar10-simple_cnn").iterdir()
    lrs = column(read_metrics(run_dir), "train/lr")
    total = TRAINED_EPOCHS * STEPS_PER_EPOCH
    assert [s for s, _ in lrs] == list(range(total))
    for step, lr in lrs:
        assert lr == pytest.approx(expected_lr(step, total))


def test_validate_best_checkpoint_reproduces_its_recorded_accuracy(fitted: TrainedRun) -> None:
    data_dir, root, run_dir = fitted
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    cli = CnnbenchCLI(args=["validate", *base_args(data_dir, root, "--ckpt_path=best")])
    assert cli.log_dir.parent == run_dir and cli.log_dir.name.startswith("validate-")
    (val_acc,) = [v for _, v in column(read_metrics(cli.log_dir), "val/acc")]
    assert val_acc == pytest.approx(float(BEST_PATTERN.match(best.name)[2]), abs=1e-4)


def test_test_and_predict_on_the_test_split(fitted: TrainedRun) -> None:
    data_dir, root, run_dir = fitted
    cli = CnnbenchCLI(args=["test", *base_args(data_dir, root, "--ckpt_path=best")])
    (test_acc,) = [v for _, v in column(read_metrics(cli.log_dir), "test/acc")]
    assert 0.0 <= test_acc <= 1.0

    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    cli = CnnbenchCLI(args=["predict", *base_args(data_dir, root, f"--ckpt_path={best}")])
    assert cli.log_dir.parent == run_dir
    with open(cli.log_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30  # the test split
    probs = [[float(r[k]) for k in r if k.startswith("p_")] for r in rows]
    assert all(math.isclose(sum(p), 1.0, abs_tol=1e-4) for p in probs)
    assert [int(r["pred"]) for r in rows] == [max(range(10), key=p.__getitem__) for p in probs]
    # The predictions are those of the best weights: the test accuracy above, recomputed from the CSV.
    labels = cli.datamodule.splits["test"][1].tolist()
    assert sum(int(r["pred"]) == y for r, y in zip(rows, labels, strict=True)) / 30 == pytest.approx(test_acc)


def test_two_runs_with_the_same_settings_get_separate_folders(cifar_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    args = ["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1")]
    first, second = CnnbenchCLI(args=args), CnnbenchCLI(args=args)
    assert first.run_dir != second.run_dir
    for cli in (first, second):
        assert (cli.run_dir / "config.yaml").exists() and (cli.run_dir / "checkpoints" / "last.ckpt").exists()


def test_print_config_round_trips(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = base_args(cifar_dir, tmp_path / "runs", "--trainer.max_epochs=3", "--model.label_smoothing=0.1")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    config = tmp_path / "printed.yaml"
    config.write_text(printed)
    with pytest.raises(SystemExit):
        main(["fit", f"--config={config}", "--print_config"])
    assert capsys.readouterr().out == printed
    parsed = yaml.safe_load(printed)
    assert parsed["trainer"]["max_epochs"] == 3 and parsed["model"]["init_args"]["label_smoothing"] == 0.1


def test_short_name_of_a_variant_selects_class_and_depth_and_names_the_run(cifar_dir: Path, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    args = [f"--config={repo / 'configs/cifar10/resnet18.yaml'}", f"--data.data_dir={cifar_dir}"]
    cli = CnnbenchCLI(args=[*args, "--model=resnet34", f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert type(cli.model).__name__ == "ResNet" and cli.model.hparams.depth == 34
    assert cli.model.hparams.lr == 0.1 and cli.model.hparams.label_smoothing == 0.1  # the config's recipe stays
    assert cli.run_dir.parent.name == "cifar10-resnet34"


@pytest.mark.parametrize(("extra", "expected"), [([], True), (["--trainer.deterministic=true"], False),
                                               (["--trainer.benchmark=false"], False)])  # fmt: skip
def test_cudnn_autotuner_is_on_unless_deterministic_or_turned_off(
    cifar_dir: Path, tmp_path: Path, extra: list[str], expected: bool
) -> None:
    args = ["--model=simple_cnn", f"--data.data_dir={cifar_dir}", f"--trainer.default_root_dir={tmp_path}", *extra]
    cli = CnnbenchCLI(args=args, run=False)
    assert torch.backends.cudnn.benchmark is expected and cli.trainer is not None


def test_models_command_lists_every_model_with_its_size(capsys: pytest.CaptureFixture) -> None:
    from tests.helpers.model_params import EXPECTED_PARAMS

    main(["models", "--dataset", "fashion_mnist"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()[2:]]
    listed = {cells[1].strip(): int(cells[3].strip().replace(",", "")) for cells in rows}
    assert listed == {name: EXPECTED_PARAMS[name][(1, 224 if name == "alexnet" else 28)] for name in EXPECTED_PARAMS}
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "resnet19"])
    assert exit_info.value.code == 2 and "unknown model(s) resnet19" in capsys.readouterr().err


def test_a_users_own_data_module_is_passed_by_class_path(tmp_path: Path) -> None:
    args = [
        "--model=simple_cnn", "--data=tests.helpers.custom_data.NoiseDataModule", "--data.num_images=48",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    fit = CnnbenchCLI(args=["fit", *args])
    assert fit.run_dir.parent.name == "NoiseDataModule-simple_cnn"
    assert fit.model.backbone(torch.zeros(2, 1, 16, 16)).shape == (2, 4)  # its shape facts reached the model
    assert (fit.run_dir / "checkpoints" / "last.ckpt").is_file()
    test = CnnbenchCLI(args=["test", *args, "--ckpt_path=last"])
    assert test.log_dir.parent == fit.run_dir
    rows = list(csv.reader((test.log_dir / "confusion_matrix.csv").read_text().splitlines()))
    assert rows[0][1:] == ["0", "1", "2", "3"] and sum(int(x) for row in rows[1:] for x in row[1:]) == 48


def test_val_size_0_trains_on_every_image_and_best_means_the_final_state(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [a for a in base_args(cifar_dir, tmp_path) if not a.startswith("--data.val_size")]
    cli = CnnbenchCLI(args=["fit", *args, "--data.val_size=0", "--trainer.max_epochs=2"])
    assert cli.trainer.global_step == 2 * math.ceil(100 / 16)  # all 100 train images, batch 16
    checkpoints = sorted(p.name for p in (cli.run_dir / "checkpoints").iterdir())
    assert checkpoints == ["last.ckpt"]  # nothing ranks the epochs: no best file
    rows = read_metrics(cli.run_dir)
    assert column(rows, "train/acc") and not any(name.startswith("val/") for name in rows[0])
    assert "the last state is the final model" in capsys.readouterr().out
    test = CnnbenchCLI(args=["test", *args, "--data.val_size=0", "--ckpt_path=best"])
    assert Path(test.config["test"]["ckpt_path"]) == cli.run_dir / "checkpoints" / "last.ckpt"
    assert "test/acc" in test.trainer.callback_metrics
