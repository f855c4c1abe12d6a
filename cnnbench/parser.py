"""The CLI's argument parser: jsonargparse's several-line errors (after a full usage text) become one line.

A misspelled or unknown key names the closest valid one; a value of the wrong type says what was expected.
"""

from __future__ import annotations

import difflib
import inspect
import re
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from cnnbench.classifier import ImageClassifier
from cnnbench.data import ImageDataModule
from cnnbench.errors import CnnbenchError
from cnnbench.models.registry import families, list_models
from cnnbench.ranges import describe


class ConfigError(CnnbenchError):
    """A command-line option or config file key is unknown or has a value of the wrong type."""


def closest(key: str, candidates: list[str]) -> str:
    """`` (did you mean --x?)`` for the candidate nearest ``key``, or an empty string."""
    leaf = key.rsplit(".", 1)[-1]
    same_group = [c for c in candidates if c.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]]
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6) or difflib.get_close_matches(
        leaf, [c.rsplit(".", 1)[-1] for c in same_group], n=1, cutoff=0.6
    )
    if not match:
        return ""
    best = match[0] if "." in match[0] or "." not in key else f"{key.rsplit('.', 1)[0]}.{match[0]}"
    return f" (did you mean --{best}?)"


def _expected(text: str) -> str:
    """``: expected int or null`` from the types jsonargparse's message lists (empty if it lists none)."""
    found = sorted(set(re.findall(r"Expected a (typing\.Literal\[[^\]]*\]|<class '[^']+'>)", text)))
    found = [re.sub(r"typing\.Literal\[(.*)\]", r"one of \1", re.sub(r"<class '([^']+)'>", r"\1", e)) for e in found]
    found = [e for e in found if e != "NoneType"] + ["null"] * ("NoneType" in found)
    return f": expected {' or '.join(found)}" if found else ""


def _out_of_range(text: str) -> str | None:
    """``--model.lr must be > 0 (got -1)`` from a restricted number type's complaint, nested (the model and data
    modules are subclass types: their own parser's condensed line comes inside) or not; None for other errors."""
    group = re.match(r'Parser key "(model|data)":', text)
    prefix = f"{group[1]}." if group else ""
    if m := re.search(r" - --([\w.]+) (must be .*? \(got .*?\))(?: - |$)", text):
        return f"--{prefix}{m[1]} {m[2]}"
    m = re.search(r'Parser key "([^"]+)":((?:(?!Parser key).)*?)Not of type (\w+):((?:(?!Parser key).)*)', text)
    if not m or (kind := describe(m[3], number="does not conform" not in m[4])) is None:
        return None
    given = (re.match(r" (\S+) does not conform", m[4]) or re.search(r"Given value: (.*?)(?: - |$)", m[4])
             or re.search(r": '([^']*)'\s*$", m[4]) or re.search(r"val='?([^')]*)'?\)", text))  # fmt: skip
    key = m[1].removeprefix("init_args.")
    return f"--{'' if key.startswith(prefix) else prefix}{key} must be {kind} (got {given[1] if given else '?'})"


def _data_options() -> list[str]:
    """``data.<name>`` for every init argument of the default data module."""
    return sorted(f"data.{p}" for p in inspect.signature(ImageDataModule).parameters)


def _model_options() -> list[str]:
    """``model.init_args.<name>`` for every init argument of every model class."""
    params = {p for cls in [ImageClassifier, *families()] for p in inspect.signature(cls).parameters}
    return sorted(f"model.init_args.{p}" for p in params)


def _unknown_model(given: str) -> str:
    """A ``--model`` that is neither a registered name nor an importable model class: say so, with the closest name."""
    names = list_models()
    match = difflib.get_close_matches(given.lower(), names, n=1, cutoff=0.6)
    hint = f" (did you mean {match[0]}?)" if match else ""
    return (
        f"--model {given} is no registered model{hint}; 'cnnbench models' lists them ({', '.join(names)}), "
        "or give a model class's import path"
    )


class CnnbenchArgumentParser(LightningArgumentParser):
    """LightningArgumentParser whose errors are one line with a hint, raised as ConfigError (exit status 2)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        raise ConfigError(self.condense(message)) from ex

    @staticmethod
    def _data_error(given: str, text: str) -> str:
        """The data module is a subclass type (a user may pass their own), so jsonargparse reports its options'
        errors against ``--data`` as a whole: name the option instead."""
        # A command-line option (NestedArg) or a config file's key.
        m = re.match(r"NestedArg\(key='([^']+)', val='(.*)'\)$", given) or re.match(r"\{'([^']+)': (.*)\}$", given)
        if not m:
            return f"invalid value {given!r} for --data"
        key, value = m[1], m[2]
        if f"data.{key}" not in _data_options():
            return f"unknown option --data.{key}{closest(f'data.{key}', _data_options())}"
        inner = re.search(rf"for --{re.escape(key)}(: expected .*?) - Expected a <class 'NoneType'>", text)
        return f"invalid value {value!r} for --data.{key}{inner[1].rstrip() if inner else _expected(text)}"

    def option_keys(self) -> list[str]:
        keys = [action.dest for action in self._actions if action.dest not in ("help", "config")]
        for action in self._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):  # subcommands
                keys += [
                    k for sub in choices.values() if isinstance(sub, CnnbenchArgumentParser) for k in sub.option_keys()
                ]
        return keys

    def condense(self, message: str) -> str:
        text = " ".join(message.split())
        if m := re.search(r"unrecognized arguments: (.*)", text):
            keys = [tok.lstrip("-").split("=", 1)[0] for tok in m[1].split() if tok.startswith("--")] or [m[1]]
            return "; ".join(f"unknown option --{key}{closest(key, self.option_keys())}" for key in keys)
        if m := re.search(r"does not accept (?:option|nested key) '([^']+)'", text):
            return f"unknown config key '{m[1]}'{closest(m[1], self.option_keys())}"
        if m := re.search(r"Parser key \"model\":.*Option '([^']+)' is not accepted", text):
            hint = closest(f"model.init_args.{m[1]}", _model_options())
            return f"unknown model option --model.{m[1]}{hint.replace('init_args.', '')}"
        if out_of_range := _out_of_range(text):
            return out_of_range
        if m := re.search(r'Parser key "data":.*?Given value: (.*)$', text):
            return self._data_error(m[1], text)
        if m := re.search(r'Parser key "model":.*?Given value: ([^{}\s]+)$', text):
            return _unknown_model(m[1])
        if m := re.search(r'Parser key "([^"]+)":.*?Given value: (.*)$', text):
            return f"invalid value {m[2]!r} for --{m[1]}{_expected(text)}"
        return text
