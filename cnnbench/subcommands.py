"""The ``cnnbench`` subcommands that are not LightningCLI's: name -> entry point, each imported only when run."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

_ENTRY_POINTS = {
    "models": "cnnbench.models.summary:models_command",
    "export": "cnnbench.export:export_command",
    "report": "cnnbench.report.command:report_command",
    "sweep": "cnnbench.sweep:sweep_command",
    "lr_find": "cnnbench.lr_find:lr_find_command",
    "--version": "cnnbench.console:show_version",
}


def _lazy(target: str) -> Callable[[list[str]], None]:
    module, name = target.split(":")

    def run(args: list[str]) -> None:
        getattr(import_module(module), name)(args)

    return run


COMMANDS: dict[str, Callable[[list[str]], None]] = {name: _lazy(target) for name, target in _ENTRY_POINTS.items()}
