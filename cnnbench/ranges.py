"""Option ranges, stated once: as jsonargparse's restricted number types in the ``__init__`` annotations.

The CLI's parser checks them (and ``--help`` shows them); ``check_ranges`` checks the same annotations when a
model or data module is built in Python, raising the BadValueError the CLI prints as one line.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml
from jsonargparse.typing import registered_types, restricted_number_type

from cnnbench.errors import BadValueError

# Ranges jsonargparse.typing has no name for (it has PositiveFloat, ClosedUnitInterval, OpenUnitInterval, ...).
NonNegativeFloatBelowOne = restricted_number_type(
    "NonNegativeFloatBelowOne", float, [(">=", 0.0), ("<", 1.0)], docstring="float in [0, 1)"
)
PositiveFloatUpToOne = restricted_number_type(
    "PositiveFloatUpToOne", float, [(">", 0.0), ("<=", 1.0)], docstring="float in (0, 1]"
)

# A parsed value keeps its restricted type (an int or float subclass); when a config is dumped, or its value carried
# over to another --data/--model class whose option has the same name, YAML must write it as the plain number.
yaml.SafeDumper.add_multi_representer(int, yaml.representer.SafeRepresenter.represent_int)
yaml.SafeDumper.add_multi_representer(float, yaml.representer.SafeRepresenter.represent_float)

_SYMBOLS = {operator.gt: ">", operator.ge: ">=", operator.lt: "<", operator.le: "<="}


def _number(text: str) -> str:
    """``0`` for ``0.0``: the range as a user writes it."""
    return text[:-2] if text.endswith(".0") else text


def range_text(bounds: list[tuple[str, str]]) -> str:
    """``in [0, 1)`` for ``[(">=", "0"), ("<", "1")]``, ``> 0`` for ``[(">", "0")]``."""
    lower = [(op, _number(ref)) for op, ref in bounds if op in (">", ">=")]
    upper = [(op, _number(ref)) for op, ref in bounds if op in ("<", "<=")]
    if len(bounds) == 2 and lower and upper:
        (low_op, low), (high_op, high) = lower[0], upper[0]
        return f"in {'[' if low_op == '>=' else '('}{low}, {high}{']' if high_op == '<=' else ')'}"
    return " and ".join(f"{op} {_number(ref)}" for op, ref in bounds)


def describe(type_name: str, number: bool = False) -> str | None:
    """``> 0`` for the restricted number type named ``type_name`` (``an int > 0`` with ``number``), None for
    another type."""
    kind = next((t for t in registered_types.values() if t.__name__ == type_name), None)
    if kind is None or not hasattr(kind, "_restrictions"):
        return None
    text = range_text([(_SYMBOLS[op], str(ref)) for op, ref in kind._restrictions])
    return f"{'an int' if kind._type is int else 'a number'} {text}" if number else text


def _restricted(annotation: Any) -> list[type]:
    """The restricted number types in an annotation: ``PositiveFloat``, ``PositiveFloat | None``,
    ``list[PositiveFloat]``."""
    if hasattr(annotation, "_restrictions"):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        return [t for arg in typing.get_args(annotation) for t in _restricted(arg)]
    return []


def _violation(kind: type, value: Any) -> str | None:
    """Why ``value`` (a number or a list of them) is outside ``kind``'s range, or None if it is inside."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            try:
                kind(item)
            except ValueError:
                bounds = [(_SYMBOLS[op], str(ref)) for op, ref in kind._restrictions]
                return f"must be {range_text(bounds)} (got {value})"
    return None


def check_ranges(cls: type, base: type, values: Mapping[str, Any], prefix: str) -> None:
    """Check each of ``values`` against the restricted number type its annotation in the ``__init__`` of ``cls``
    (or of one of its bases down to ``base``) names; BadValueError names the first one outside
    (``--model.lr must be > 0 (got -1)``).
    """
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):  # a subclass's annotation wins; Lightning's own classes hold no ranges
        if issubclass(klass, base) and "__init__" in vars(klass):
            hints.update(typing.get_type_hints(klass.__init__))
    for name, value in values.items():
        for kind in _restricted(hints.get(name)):
            if (why := _violation(kind, value)) is not None:
                raise BadValueError(f"{prefix}{name} {why}")
