"""YAML files a command takes (``--config``, a sweep spec, ...): a syntax error names the file, its line and column.

jsonargparse reads a config's text and reports YAML errors against ``"<unicode string>"``, without the file; so every
YAML file given on a command line is parsed here first, and ``load_yaml`` is what cnnbench's own readers use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cnnbench.errors import CnnbenchError

YAML_SUFFIXES = (".yaml", ".yml")


class YamlSyntaxError(CnnbenchError):
    """A YAML file that does not parse."""


def load_yaml(path: Path, what: str = "file") -> Any:
    """The contents of the YAML file ``path``, or one line naming the file and where its syntax breaks."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(f"{what} {path} is not a text file ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(f"{what} {path}{where}: YAML syntax error: {problem}; fix the file") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{what} {path}: YAML syntax error: {' '.join(str(exc).split())}; fix the file") from None


def check_yaml_arguments(args: Sequence[str]) -> None:
    """Parse every YAML file named on a command line (``--config F``, ``--config=F``, ``--data F``, ...) first."""
    for i, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        option = arg.split("=", 1)[0] if "=" in arg else (args[i - 1] if i and args[i - 1].startswith("-") else "")
        path = Path(value)
        if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
            load_yaml(path, "config" if option.lstrip("-").endswith("config") or option == "-c" else f"{option} file")
