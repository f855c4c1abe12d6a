"""Option ranges are the __init__ annotations: the CLI refuses a value outside in one line (exit 2), ``--help``
shows the type, and building the class in Python refuses it too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbench.data import ImageDataModule
from cnnbench.errors import BadValueError
from cnnbench.models import SimpleCNN
from cnnbench.models.airnet import AirNet
from tests.helpers.runs import CnnbenchCLI, base_args, main


def one_line_error(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    return line


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--model.lr=-1"], "--model.lr must be > 0 (got -1)"),
        (["--model.label_smoothing=1"], "--model.label_smoothing must be in [0, 1) (got 1)"),
        (["--model.lr=x"], "--model.lr must be a number > 0 (got x)"),
        (["--model=airnet", "--model.whiten_bias_epochs=-1"], "--model.whiten_bias_epochs must be >= 0 (got -1)"),
        (["--data.batch_size=0"], "--data.batch_size must be > 0 (got 0)"),
        (["--data.batch_size=1.5"], "--data.batch_size must be an int > 0 (got 1.5)"),
        (["--data.subset=0"], "--data.subset must be in (0, 1] (got 0)"),
        (["--data.std=[0.2,-1,0.2]", "--data.mean=[0.5,0.5,0.5]"], "--data.std must be > 0 (got -1)"),
        (["--data.mix_prob=1.5"], "--data.mix_prob must be in [0, 1] (got 1.5)"),
        (["--data.mixup_alpha=-0.2"], "--data.mixup_alpha must be >= 0 (got -0.2)"),
    ],
)
def test_the_cli_refuses_a_value_out_of_range_in_one_line(
    options: list[str], expected: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [a for a in base_args(cifar_dir, tmp_path, *options) if not options[0].startswith("--model=") or
            a != "--model=simple_cnn"]  # fmt: skip
    assert one_line_error(["fit", *args], capsys) == f"cnnbench: error: {expected}"
    assert not any(tmp_path.rglob("config.yaml"))


def test_a_config_file_value_out_of_range_is_one_line(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  init_args:\n    ema_decay: 1.0\n")
    line = one_line_error(["fit", *base_args(cifar_dir, tmp_path / "runs", f"--config={config}")], capsys)
    assert line == "cnnbench: error: --model.ema_decay must be in [0, 1) (got 1.0)"


@pytest.mark.parametrize(
    ("help_args", "option", "type_name"),
    [
        (["--model.help", "SimpleCNN"], "--model.lr", "PositiveFloat"),
        (["--model.help", "SimpleCNN"], "--model.label_smoothing", "NonNegativeFloatBelowOne"),
        (["--model.help", "AirNet"], "--model.whiten_images", "NonNegativeInt"),
        (["--data.help", "ImageDataModule"], "--data.batch_size", "PositiveInt"),
        (["--data.help", "ImageDataModule"], "--data.mix_prob", "ClosedUnitInterval"),
    ],
)
def test_help_shows_the_range_type(
    help_args: list[str], option: str, type_name: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main(["fit", *help_args])
    text = " ".join(capsys.readouterr().out.split())
    entry = text.split(f"{option} {option.rsplit('.', 1)[-1].upper()} ", 1)[1]  # the option's own entry
    assert f"(type: {type_name}," in entry.split(" --", 1)[0]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: SimpleCNN(lr=-1), "--model.lr must be > 0 (got -1)"),
        (lambda: SimpleCNN(muon_ns_steps=100), "--model.muon_ns_steps must be in [1, 99] (got 100)"),
        (lambda: AirNet(whiten_images=-5), "--model.whiten_images must be >= 0 (got -5)"),
        (lambda: AirNet(whiten_bias_epochs=-0.5), "--model.whiten_bias_epochs must be >= 0 (got -0.5)"),
        (lambda: ImageDataModule(batch_size=0), "--data.batch_size must be > 0 (got 0)"),
        (
            lambda: ImageDataModule(mean=[0.5] * 3, std=[0.2, -1.0, 0.2]),
            "--data.std must be > 0 (got [0.2, -1.0, 0.2])",
        ),
        (lambda: ImageDataModule(mix_prob=1.5), "--data.mix_prob must be in [0, 1] (got 1.5)"),
    ],
)
def test_building_in_python_refuses_a_value_out_of_range(build, expected: str) -> None:
    with pytest.raises(BadValueError) as err:
        build()
    assert str(err.value) == expected


def test_parsed_values_are_kept_as_plain_numbers(cifar_dir: Path, tmp_path: Path) -> None:
    # jsonargparse hands the classes plain numbers, not its number types: checkpoints are read with weights_only=True,
    # which would refuse a PositiveFloat in the hparams (an upgrade that changes this fails here).
    cli = CnnbenchCLI(args=[*base_args(cifar_dir, tmp_path, "--model.lr=0.1", "--data.batch_size=8")], run=False)
    assert type(cli.model.hparams.lr) is float and type(cli.datamodule.hparams.batch_size) is int
    assert type(cli.datamodule.batch_size) is int
    path = tmp_path / "hparams.pt"
    torch.save({"model": dict(cli.model.hparams), "data": dict(cli.datamodule.hparams)}, path)
    assert torch.load(path, weights_only=True)["model"]["lr"] == 0.1
