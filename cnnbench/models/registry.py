"""A tiny model registry: short names (``simple_cnn``, ``lenet5``) mapped to backbone factories.

A factory builds a plain ``nn.Module`` from ``num_classes``, ``in_channels`` and ``image_size``
(plus its own options); the LightningModules in this package wrap those backbones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register_model(factory: Factory) -> Factory:
    """Register a backbone factory under its function name."""
    name = factory.__name__
    if name in _FACTORIES:
        raise ValueError(f"model {name!r} is registered twice")
    _FACTORIES[name] = factory
    return factory


def factories() -> dict[str, Callable[..., nn.Module]]:
    """Every registered factory by name (a copy: register with ``register_model``)."""
    return dict(_FACTORIES)


def list_models() -> list[str]:
    """Names of all registered backbones, sorted."""
    return sorted(_FACTORIES)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name``; ``kwargs`` go to its factory."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return factory(**kwargs)
