"""Bad input: one clear line on stderr, exit status 2, no traceback, and nothing already saved is lost."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
import torch

import cnnbench.checkpoint_io as checkpoint_io
from tests.helpers.datasets import write_fashion_mnist
from tests.helpers.runs import CnnbenchCLI, base_args, main


def tree(root: Path) -> dict[str, bytes | None]:
    """Every folder (None) and file (its bytes) under ``root``, by relative path: what a failed command must leave."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def fails(args: list[str], capsys: pytest.CaptureFixture, root: Path | None = None) -> str:
    """Run the CLI, expect exit status 2 and return its one-line error; nothing under ``root`` (the runs root) is
    created, changed or removed."""
    before = tree(root) if root else {}
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    if root:
        assert tree(root) == before, "a failed command wrote under the runs root"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    return line


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: the default runs root (checkpoints/) would be made in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("option", "hint"),
    [
        ("--trainer.max_epoch=3", "did you mean --trainer.max_epochs?"),
        ("--data.batchsize=8", "did you mean --data.batch_size?"),
        ("--model.weight_decy=0.1", "did you mean --model.weight_decay?"),
    ],
)
def test_misspelled_option_names_the_closest_one(
    option: str, hint: str, capsys: pytest.CaptureFixture, cwd: Path
) -> None:
    line = fails(["fit", "--model=simple_cnn", option], capsys, cwd)
    assert option.split("=")[0].lstrip("-").split(".")[-1] in line and hint in line


def test_misspelled_key_in_a_config_file(cwd: Path, capsys: pytest.CaptureFixture) -> None:
    config = cwd / "bad.yaml"
    config.write_text("trainer:\n  max_epoch: 3\n")
    line = fails(["fit", "--model=simple_cnn", f"--config={config}"], capsys, cwd)
    assert "unknown config key 'trainer.max_epoch'" in line and "did you mean --trainer.max_epochs?" in line


@pytest.mark.parametrize(
    ("option", "expected"),
    [("--trainer.max_epochs=three", "expected int"), ("--data.augment=crop", "'none', 'flip', 'crop_flip'")],
)
def test_wrong_type_says_what_was_expected(
    option: str, expected: str, capsys: pytest.CaptureFixture, cwd: Path
) -> None:
    line = fails(["fit", "--model=simple_cnn", option], capsys, cwd)
    assert f"invalid value '{option.split('=')[1]}' for {option.split('=')[0]}" in line and expected in line


def test_partial_data_folder_lists_the_missing_files(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    (cifar_dir / "cifar-10-batches-py" / "data_batch_3").unlink()
    line = fails(["fit", *base_args(cifar_dir, tmp_path / "runs")], capsys, tmp_path / "runs")
    assert "data_batch_3" in line and "data_batch_2" not in line


def test_truncated_checkpoint_is_refused_and_left_alone(fitted, capsys: pytest.CaptureFixture) -> None:
    data_dir, root, run_dir = fitted
    damaged = run_dir / "checkpoints" / "damaged.ckpt"
    data = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    line = fails(["fit", *base_args(data_dir, root, "--trainer.max_epochs=3", f"--ckpt_path={damaged}")], capsys, root)
    assert "cannot be read" in line and "truncated or corrupt" in line
    assert damaged.read_bytes() == data[: len(data) // 2]


def test_checkpoint_of_another_model_names_the_model_it_holds(fitted, capsys: pytest.CaptureFixture) -> None:
    data_dir, root, run_dir = fitted
    args = base_args(data_dir, root, f"--ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}")
    # The model given by class path, as configs do (the checkpoint recorded the full module path).
    line = fails(
        ["test", *[a if a != "--model=simple_cnn" else "--model=cnnbench.models.LeNet5" for a in args]], capsys, root
    )
    assert "holds simple_cnn trained on cifar10" in line and "builds lenet5 on cifar10" in line


def test_checkpoint_of_another_dataset_is_refused(fitted, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, root, run_dir = fitted
    fmnist = tmp_path / "fmnist"
    write_fashion_mnist(fmnist)
    args = base_args(fmnist, root, "--data.dataset=fashion_mnist", f"--ckpt_path={run_dir / 'checkpoints/last.ckpt'}")
    line = fails(["test", *args], capsys, root)
    assert "holds simple_cnn trained on cifar10 (3x32x32" in line and "simple_cnn on fashion_mnist (1x28x28" in line


def test_resume_prints_the_options_the_checkpoint_sets(fitted, caplog: pytest.LogCaptureFixture) -> None:
    data_dir, root, run_dir = fitted
    args = base_args(
        data_dir, root, "--trainer.max_epochs=3", "--model.label_smoothing=0.2", "--model.channels_last=true",
        "--model.flip_tta=true", "--ckpt_path=last",
    )  # fmt: skip
    cli = CnnbenchCLI(args=["fit", *args])
    assert "sets the model options it was trained with: label_smoothing=0.0 (config: 0.2)" in caplog.text
    assert cli.model.hparams.label_smoothing == 0.0 and cli.trainer.current_epoch == 3 and cli.run_dir == run_dir
    # How to run and evaluate it stays this run's choice.
    assert cli.model.hparams.channels_last and cli.model.hparams.flip_tta
    assert "flip_tta" not in caplog.text


def test_missing_checkpoint_file(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = fails(["fit", *base_args(cifar_dir, tmp_path, f"--ckpt_path={tmp_path / 'nope.ckpt'}")], capsys, tmp_path)
    assert "nope.ckpt: no such file" in line


def test_auto_resume_starts_fresh_then_continues(cifar_dir: Path, tmp_path: Path, caplog) -> None:
    args = base_args(cifar_dir, tmp_path, "--trainer.max_epochs=1", "--ckpt_path=auto")
    first = CnnbenchCLI(args=["fit", *args])
    assert "no earlier run with a last.ckpt" in caplog.text
    second = CnnbenchCLI(args=["fit", *[a.replace("max_epochs=1", "max_epochs=2") for a in args]])
    assert second.run_dir == first.run_dir and second.trainer.global_step == 10
    assert f"resuming run {first.run_dir}" in caplog.text


def test_output_folder_that_cannot_be_written(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = fails(["fit", *base_args(cifar_dir, blocker / "runs")], capsys, tmp_path)
    assert "cannot write the run folder" in line and "--trainer.default_root_dir" in line


def test_disk_full_while_saving_keeps_the_previous_checkpoint(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    writes = {"n": 0}
    real_open = open

    class FullDisk:
        """A file whose writes fail with ENOSPC once the first checkpoint (best + last) is on disk."""

        def __init__(self, path, mode):
            self.file = real_open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            writes["n"] += 1
            if writes["n"] > 2:  # one write per file, two files (best, last) at the first epoch end
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    monkeypatch.setattr(checkpoint_io, "open", FullDisk, raising=False)
    root = tmp_path / "runs"
    line = fails(["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2")], capsys)
    assert "no space left on the device while saving" in line and "resume with --ckpt_path auto" in line
    monkeypatch.undo()
    (checkpoints,) = root.glob("*/*/checkpoints")
    assert not list(checkpoints.glob(".*.tmp"))
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0  # the first epoch's, intact
    shutil.rmtree(root)


@pytest.mark.parametrize("bad_key", ["--trainer.max_epoch=3", "--trainer.max_epocs=3", "--data.batchsize=8"])
def test_unknown_config_key_fails_naming_the_key(bad_key: str, capsys: pytest.CaptureFixture, cwd: Path) -> None:
    line = fails(["fit", "--model=simple_cnn", bad_key], capsys, cwd)
    assert bad_key.split("=")[0] in line and "unknown option" in line


def test_missing_data_folder_fails_with_the_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no-data"
    line = fails(["fit", *base_args(missing, tmp_path / "runs")], capsys, tmp_path / "runs")
    assert f"not found in {missing / 'cifar-10-batches-py'}" in line and "--data.data_dir" in line


def test_resume_without_a_checkpoint_stops_instead_of_starting_over(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    line = fails(["fit", *base_args(cifar_dir, root, "--ckpt_path=last")], capsys, root)
    assert "no last checkpoint in any run under" in line


def test_model_that_does_not_fit_the_images_fails_with_one_clear_line(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    line = fails(["fit", *base_args(cifar_dir, tmp_path / "runs"), "--model=alexnet"], capsys, tmp_path / "runs")
    assert "alexnet needs inputs of at least 65x65" in line and "--data.image_size 224" in line


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--data.batch_size=0", "--data.batch_size must be > 0 (got 0)"),
        ("--data.batch_size=-4", "--data.batch_size must be > 0 (got -4)"),
        ("--data.num_workers=-1", "--data.num_workers must be >= 0 (got -1)"),
        ("--data.subset=0", "--data.subset must be in (0, 1] (got 0)"),
        ("--data.subset=1.5", "--data.subset must be in (0, 1] (got 1.5)"),
        ("--data.val_size=-1", "--data.val_size must be >= 0 (got -1)"),
        ("--data.val_size=50000", "--data.val_size must be from 0 to 49999 (cifar10's train split holds 50000"),
        ("--data.crop_padding=-2", "--data.crop_padding must be >= 0 (got -2)"),
        ("--data.alternating_flip=true", "--data.alternating_flip needs flips: --data.augment flip or crop_flip"),
        ("--data.mean=[0.5,0.5]", "--data.mean and --data.std: give mean and std together, 3 value(s) each"),
        ("--data.std=[0.2,0.2,0.2]", "--data.mean and --data.std: give mean and std together"),
        ("--data.std=[0.2,0.0,0.2]", "--data.std must be > 0 (got 0.0)"),
        ("--data.std=[0.2,-1,0.2]", "--data.std must be > 0 (got -1)"),
        ("--model.lr=-1", "--model.lr must be > 0 (got -1)"),
        ("--model.lr=0", "--model.lr must be > 0 (got 0)"),
        ("--model.weight_decay=-1", "--model.weight_decay must be >= 0 (got -1)"),
        ("--model.label_smoothing=1", "--model.label_smoothing must be in [0, 1) (got 1)"),
        ("--model.label_smoothing=-0.1", "--model.label_smoothing must be in [0, 1) (got -0.1)"),
        ("--model.warmup_epochs=-1", "--model.warmup_epochs must be >= 0 (got -1)"),
        ("--model.norm_lr_scale=0", "--model.norm_lr_scale must be > 0 (got 0)"),
    ],
)
def test_value_out_of_range_names_the_option_and_writes_nothing(
    option: str, expected: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    # mean and std come together: the std cases give a valid mean, the mean case a valid std. Alternating flips
    # need flips, which no augmentation lacks.
    pair = {"--data.mean": "--data.std=[0.2,0.2,0.2]", "--data.std": "--data.mean=[0.5,0.5,0.5]",
            "--data.alternating_flip": "--data.augment=none"}  # fmt: skip
    extra = [pair[option.split("=")[0]]] if option.split("=")[0] in pair and "together" not in expected else []
    line = fails(["fit", *base_args(cifar_dir, root, *extra, option)], capsys)
    assert expected in line
    assert not root.exists() or not any(root.rglob("*"))  # no run folder, nothing written


def test_val_size_above_a_smaller_train_folder_is_one_line(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    # The test folder holds 100 train images, fewer than CIFAR-10's 50,000: known only once the files are read.
    root = tmp_path / "runs"
    line = fails(["fit", *base_args(cifar_dir, root, "--data.val_size=100")], capsys)
    assert "--data.val_size must be from 0 to 99" in line and "holds 100 images), got 100" in line
    assert not any(root.rglob("*"))  # the run folder created for it is removed again


@pytest.mark.parametrize(("given", "hint"), [("resnt18", " (did you mean resnet18?)"), ("mobilenet_v9", "")])
def test_unknown_model_name_says_how_to_list_the_models(
    given: str, hint: str, capsys: pytest.CaptureFixture, cwd: Path
) -> None:
    line = fails(["fit", f"--model={given}"], capsys, cwd)
    assert f"--model {given} is no registered model{hint};" in line and "'cnnbench models' lists them" in line
    assert "resnet18" in line and "simple_cnn" in line and "expected null" not in line


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_an_evaluation_that_fails_on_missing_data_leaves_the_run_folder_as_it_was(
    subcommand: str, fitted, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, root, run_dir = fitted
    args = base_args(tmp_path / "no-data", root, f"--ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}")
    line = fails([subcommand, *args], capsys, root)  # no empty <subcommand>-<time>/ folder left in the run
    assert "not found in" in line
