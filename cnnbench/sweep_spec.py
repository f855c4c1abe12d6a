"""A sweep file (``configs/sweeps/``) of ``cnnbench sweep``: its keys checked, its trials' values and fit arguments."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.config_files import load_yaml
from cnnbench.errors import CnnbenchError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
KINDS = ("float", "int", "choice", "grid")


@dataclass
class SweepSpec:
    """A sweep file (see ``configs/sweeps/``)."""

    study: str
    config: str | None = None
    args: list[str] = field(default_factory=list)
    metric: str = "val/acc"
    direction: str = "maximize"
    sampler: str = "tpe"
    pruner: str = "none"
    trials: int | None = None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> SweepSpec:
        if not path.is_file():
            raise CnnbenchError(f"{path}: no such sweep file")
        raw = load_yaml(path, "sweep file") or {}
        known = set(cls.__dataclass_fields__)
        if not isinstance(raw, dict) or "study" not in raw or set(raw) - known:
            raise CnnbenchError(f"{path}: a sweep file needs 'study' and takes only {', '.join(sorted(known))}")
        spec = cls(**raw)
        spec.check(path)
        return spec

    def check(self, path: Path) -> None:
        """Refuse, naming the key, what Optuna would fail on later (or silently misread)."""
        if self.sampler not in SAMPLERS or self.pruner not in PRUNERS:
            raise CnnbenchError(f"{path}: sampler is one of {SAMPLERS}, pruner one of {PRUNERS}")
        if self.direction not in ("maximize", "minimize"):
            raise CnnbenchError(f"{path}: direction is maximize or minimize")
        if not isinstance(self.args, list) or not all(isinstance(a, str) for a in self.args):
            raise CnnbenchError(f"{path}: args is a list of strings (CLI arguments)")
        for key, dist in self.space.items():
            kinds = [k for k in KINDS if k in (dist or {})]
            if len(kinds) != 1 or set(dist) - {*KINDS, "log"}:
                raise CnnbenchError(f"{path}: space.{key} needs exactly one of {KINDS} (and 'log' for ranges)")
            values = dist[kinds[0]]
            if kinds[0] in ("float", "int") and not (isinstance(values, list) and len(values) == 2):
                raise CnnbenchError(f"{path}: space.{key}: {kinds[0]} takes [low, high]")
            if kinds[0] in ("choice", "grid") and not (isinstance(values, list) and values):
                raise CnnbenchError(f"{path}: space.{key}: {kinds[0]} takes a non-empty list")
            if self.sampler == "grid" and kinds[0] in ("float", "int"):
                raise CnnbenchError(f"{path}: space.{key}: the grid sampler takes only grid and choice keys")

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the grid/choice keys (the grid sampler's points), in a fixed order."""
        keys = [k for k, d in self.space.items() if "grid" in d or "choice" in d]
        values = [self.space[k].get("grid", self.space[k].get("choice")) for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]

    def distributions(self) -> dict[str, Any]:
        """Each key of the space as the Optuna distribution its trials draw from."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        def of(dist: dict[str, Any]) -> Any:
            log = bool(dist.get("log"))
            if "float" in dist:
                return FloatDistribution(*map(float, dist["float"]), log=log)
            if "int" in dist:
                return IntDistribution(*map(int, dist["int"]), log=log)
            return CategoricalDistribution(dist.get("grid", dist.get("choice")))

        return {key: of(dist) for key, dist in self.space.items()}


def suggest(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """The trial's value of every key of the space (a grid point's are fixed by its enqueued parameters)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    params = {}
    for key, dist in spec.distributions().items():
        if isinstance(dist, CategoricalDistribution):
            params[key] = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, IntDistribution):
            params[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log)
        else:
            params[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log)
    return params


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def trial_args(spec: SweepSpec, study_dir: Path, number: int, params: dict[str, Any]) -> list[str]:
    """The ``cnnbench fit`` arguments of one trial: the config, the fixed args, the trial's values, its folder."""
    config = ["--config", spec.config] if spec.config else []
    values = [f"--{key}={_cli_value(value)}" for key, value in params.items()]
    tags = json.dumps([f"study:{spec.study}", f"trial:{number}"])
    placement = [f"--trainer.default_root_dir={study_dir}", f"--run_name=trial-{number:04d}", f"--wandb.tags={tags}"]
    return ["fit", *config, *spec.args, *values, *placement]
