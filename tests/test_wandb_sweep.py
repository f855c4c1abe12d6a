"""The shipped W&B sweeps: the command a W&B agent runs (``${args}`` as ``--name=value``) is a valid fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import CnnbenchCLI

# From the repository, wherever pytest runs: relative to the working directory, the list is empty elsewhere and every
# test below would be skipped as an empty parameter set.
SWEEPS = sorted((Path(__file__).resolve().parents[1] / "configs" / "sweeps").glob("wandb-*.yaml"))


def agent_args(parameters: dict) -> list[str]:
    """What a W&B agent puts in place of ``${args}``: ``--<parameter>=<value>`` for each, here its last/largest."""
    args = []
    for name, spec in parameters.items():
        value = spec["values"][-1] if "values" in spec else spec["max"]
        args.append(f"--{name}={value}")
    return args


def test_the_shipped_wandb_sweeps_are_all_checked() -> None:
    assert {"wandb-lenet5-lr-wd", "wandb-seeds-simple_cnn"} <= {p.stem for p in SWEEPS}


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_a_wandb_agents_command_reaches_the_model(sweep: Path, cifar_dir: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(sweep.read_text())
    command = spec["command"]
    assert command[:2] == ["cnnbench", "fit"] and "${args}" in command
    given = agent_args(spec["parameters"])
    tiny = [f"--data.data_dir={cifar_dir}", "--data.val_size=20", "--data.batch_size=16", "--data.num_workers=0",
            "--data.download=false", f"--trainer.default_root_dir={tmp_path / 'runs'}", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
            "--trainer.accelerator=cpu"]  # fmt: skip
    at = command.index("${args}")
    args = [*command[1:at], *given, *command[at + 1 :], *tiny]
    if any(a.startswith("--data.batch_size=") for a in given):
        args.remove("--data.batch_size=16")
    cli = CnnbenchCLI(args=args)
    config = yaml.safe_load((cli.run_dir / "config.yaml").read_text())
    for name, spec_value in spec["parameters"].items():
        expected = spec_value["values"][-1] if "values" in spec_value else spec_value["max"]
        node = config
        for key in name.split("."):
            node = node[key] if key in node else node["init_args"][key]  # --data.x is data.init_args.x
        assert node == expected, name
    for arg in given:
        name, value = arg[2:].split("=", 1)
        if name.startswith("model.init_args."):  # reached the model itself, not only the config
            assert cli.model.hparams[name.removeprefix("model.init_args.")] == pytest.approx(float(value))
        if name == "seed_everything":
            assert cli.config["fit"]["seed_everything"] == int(value)
