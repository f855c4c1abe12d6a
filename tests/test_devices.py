"""One device unless the user asks for more: a multi-GPU box must not turn every command into a DDP run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.runs import CnnbenchCLI, base_args, main


def test_the_default_trainer_uses_one_device(cifar_dir: Path, tmp_path: Path) -> None:
    args = [a for a in base_args(cifar_dir, tmp_path) if not a.startswith("--trainer.accelerator")]
    cli = CnnbenchCLI(args=args, run=False)
    # Lightning's own default is devices="auto": every visible GPU, one DDP rank each.
    assert cli.config["trainer"]["devices"] == 1
    assert cli.config["trainer"]["accelerator"] == "auto"
    assert cli.trainer.num_devices == 1 and cli.trainer.world_size == 1


@pytest.mark.parametrize("subcommand", ["test", "predict"])
def test_test_and_predict_refuse_several_processes_in_one_line(
    subcommand: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = base_args(cifar_dir, tmp_path, "--trainer.strategy=ddp", "--trainer.devices=2")
    with pytest.raises(SystemExit) as exit_info:
        main([subcommand, *args])  # refused before any process starts or any image is evaluated
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"cnnbench: error: cnnbench {subcommand} runs on one device")
