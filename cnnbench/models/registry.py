"""The model registry: every name ``--model`` takes (``resnet18``), with all that is known about it.

Each backbone factory is registered with ``@register_model(Family, image_size=..., **init_args)``: its family (the
LightningModule that trains it), the family's init arguments that select it, and its native input side when that
is not the dataset's. A factory builds a plain ``nn.Module`` from ``num_classes``, ``in_channels`` and
``image_size`` (plus its own options). Everything that turns a name into a class or back reads this table: the
CLI's ``--model``, run folder names, ``cnnbench models``, reports and the W&B tags.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from cnnbench.classifier import ImageClassifier

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str
    factory: Callable[..., nn.Module]
    family: type[ImageClassifier]
    init_args: dict[str, Any] = field(default_factory=dict)  # the family's arguments that select this model
    image_size: int | None = None  # the side it is built for when not the dataset's (the DataModule resizes)

    @property
    def class_path(self) -> str:
        return f"{self.family.__module__}.{self.family.__qualname__}"

    @property
    def family_name(self) -> str:
        """The family's file name (``resnet``): a W&B tag."""
        return self.family.__module__.rsplit(".", 1)[-1]


_MODELS: dict[str, ModelSpec] = {}


def register_model(
    family: type[ImageClassifier], *, image_size: int | None = None, **init_args: Any
) -> Callable[[Factory], Factory]:
    """Register the decorated factory under its function name, trained by ``family`` given ``init_args``."""

    def register(factory: Factory) -> Factory:
        name = factory.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelSpec(name, factory, family, dict(init_args), image_size)
        return factory

    return register


def model_specs() -> dict[str, ModelSpec]:
    """Every registered model by name, sorted (a copy: register with ``register_model``)."""
    return dict(sorted(_MODELS.items()))


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def model_spec(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name``; ``kwargs`` go to its factory."""
    return model_spec(name).factory(**kwargs)


def families() -> list[type[ImageClassifier]]:
    """The LightningModule of every registered model, each once."""
    return list(dict.fromkeys(spec.family for spec in model_specs().values()))


def _import_class(class_path: str | None) -> type | None:
    module, _, attr = (class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr) if module else None
    except (ImportError, AttributeError):
        return None


def spec_of(class_path: str | None, init_args: Any) -> ModelSpec | None:
    """The registered model a class path and init arguments select (None if they select no registered one)."""
    args = dict(init_args or {})
    model_class = _import_class(class_path)
    for spec in model_specs().values():
        defaults = inspect.signature(spec.family).parameters
        if spec.family is model_class and all(
            args.get(key, defaults[key].default) == value for key, value in spec.init_args.items()
        ):
            return spec
    return None


def model_name(class_path: str | None, init_args: Any) -> str:
    """The name a run of this model is known by: its registry name, else its class name."""
    spec = spec_of(class_path, init_args)
    return spec.name if spec else str(class_path).rsplit(".", 1)[-1]


def expand_model_short_names(args: list[str]) -> list[str]:
    """Rewrite ``--model resnet18`` (a registry name) to the class and init arguments jsonargparse understands.

    The result is a JSON value, ``{"class_path": ..., "init_args": {"depth": 18}}``; jsonargparse keeps the
    other init arguments of an earlier ``--config`` when the class is the same.
    """

    def expand(value: str) -> str:
        spec = _MODELS.get(value)
        return json.dumps({"class_path": spec.class_path, "init_args": spec.init_args}) if spec else value

    out: list[str] = []
    for i, arg in enumerate(args):
        if arg.startswith("--model="):
            arg = "--model=" + expand(arg.split("=", 1)[1])
        elif i > 0 and args[i - 1] == "--model":
            arg = expand(arg)
        out.append(arg)
    return out
