"""Registry names of the LightningModules: ``resnet18`` is ``ResNet`` with ``depth=18``.

Each family's class lists the names it trains in ``variants``; these functions are the one place that
turns a name into a class and back (the CLI's ``--model resnet18``, run folder names, reports).
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

from cnnbench.classifier import ImageClassifier, model_classes


def model_variants() -> dict[str, tuple[type[ImageClassifier], dict[str, Any]]]:
    """Registry name (``resnet18``) -> (LightningModule class, the init arguments that select it)."""
    return {name: (cls, init_args) for cls in model_classes() for name, init_args in cls.variants.items()}


def _import_class(class_path: str | None) -> type | None:
    module, _, attr = (class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr) if module else None
    except (ImportError, AttributeError):
        return None


def variant_name(class_path: str | None, init_args: Any) -> str | None:
    """The registry name of a model given by class path and init arguments (None if it is no registered one)."""
    args = dict(init_args or {})
    model_class = _import_class(class_path)
    for name, (cls, selecting) in model_variants().items():
        if cls is model_class and all(
            args.get(key, inspect.signature(cls).parameters[key].default) == value for key, value in selecting.items()
        ):
            return name
    return None


def model_name(class_path: str | None, init_args: Any) -> str:
    """The name a run of this model is known by: its registry name, else its class name."""
    return variant_name(class_path, init_args) or str(class_path).rsplit(".", 1)[-1]


def expand_model_short_names(args: list[str]) -> list[str]:
    """Rewrite ``--model resnet18`` (a registry name) to the class and init arguments jsonargparse understands.

    The result is a JSON value, ``{"class_path": ..., "init_args": {"depth": 18}}``; jsonargparse keeps the
    other init arguments of an earlier ``--config`` when the class is the same.
    """
    variants = model_variants()

    def expand(value: str) -> str:
        if value not in variants:
            return value
        cls, init_args = variants[value]
        return json.dumps({"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args})

    out: list[str] = []
    for i, arg in enumerate(args):
        if arg.startswith("--model="):
            arg = "--model=" + expand(arg.split("=", 1)[1])
        elif i > 0 and args[i - 1] == "--model":
            arg = expand(arg)
        out.append(arg)
    return out
