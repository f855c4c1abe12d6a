"""One device unless the user asks for more: a multi-GPU box must not turn every command into a DDP run."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.runs import CnnbenchCLI, base_args


def test_the_default_trainer_uses_one_device(cifar_dir: Path, tmp_path: Path) -> None:
    args = [a for a in base_args(cifar_dir, tmp_path) if not a.startswith("--trainer.accelerator")]
    cli = CnnbenchCLI(args=args, run=False)
    # Lightning's own default is devices="auto": every visible GPU, one DDP rank each.
    assert cli.config["trainer"]["devices"] == 1
    assert cli.config["trainer"]["accelerator"] == "auto"
    assert cli.trainer.num_devices == 1 and cli.trainer.world_size == 1
