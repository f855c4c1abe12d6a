"""``--trainer.logger`` on the command line and in the run folder: a logger class given alone, placed in the run.

A logger with a required ``save_dir`` parses from its class name alone (the run folder supplies the folder), and every
``--trainer.logger`` entry writes inside the run folder.
"""

from __future__ import annotations

import importlib
import inspect
import json
from argparse import Namespace
from pathlib import Path
from typing import Any


def _logger_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module or "lightning.pytorch.loggers"), name)


def expand_logger_names(args: list[str]) -> list[str]:
    """Let ``--trainer.logger TensorBoardLogger`` parse although its ``save_dir`` is required: the run folder
    supplies it (see ``place_in_run_folder``), so the command line gives the class alone."""
    out: list[str] = []
    for i, arg in enumerate(args):
        option, eq, value = arg.partition("=")
        if eq and option in ("--trainer.logger", "--trainer.logger+"):
            out.append(f"{option}={_with_save_dir(value)}")
        elif i > 0 and args[i - 1] in ("--trainer.logger", "--trainer.logger+"):
            out.append(_with_save_dir(arg))
        else:
            out.append(arg)
    return out


def _with_save_dir(value: str) -> str:
    if value[:1] in "{[" or value.lower() in ("true", "false", "null", "none"):
        return value
    try:
        accepts = "save_dir" in inspect.signature(_logger_class(value)).parameters
    except (ImportError, AttributeError, ValueError):
        return value  # not a class we can see: the parser reports it
    return json.dumps({"class_path": value, "init_args": {"save_dir": "."}}) if accepts else value


def place_in_run_folder(logger_config: Any, log_dir: Path) -> Any:
    """Point a ``--trainer.logger`` entry (class_path + init_args) at the run folder before it is built.

    A logger with a ``save_dir`` writes into ``<log_dir>/<kind>/`` (``tensorboard``, ``mlflow``, ...); one that
    also takes ``name`` and ``version`` (TensorBoard) writes there directly, with no version subfolder, so a
    resumed run continues the same folder.
    """
    if not isinstance(logger_config, Namespace) or "class_path" not in logger_config:
        return logger_config
    name = str(logger_config.class_path).rpartition(".")[2]
    params = inspect.signature(_logger_class(str(logger_config.class_path))).parameters
    init_args = logger_config.get("init_args") or Namespace()
    if "save_dir" in params:
        kind = name.removesuffix("Logger").lower() or "logs"
        init_args["save_dir"] = str(log_dir / kind) if "name" not in params else str(log_dir)
        if "name" in params and "version" in params:
            init_args["name"], init_args["version"] = kind, ""
    logger_config["init_args"] = init_args
    return logger_config
