"""``cnnbench report --baseline GROUP``: each other group's difference to the baseline group, with its 95% interval.

Groups that ran the same seeds are compared seed by seed (paired t: same data order and initialization, so the
seed's own luck cancels); otherwise Welch's t. An interval that contains 0 is "within noise".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cnnbench.errors import CnnbenchError
from cnnbench.report.groups import Group
from cnnbench.report.runs import RunRecord
from cnnbench.report.stats import Difference, compare

COLUMNS = ["group", "model", "metric", "n", "baseline n", "difference", "95% CI", "test", "verdict"]
METRICS: dict[str, Callable[[RunRecord], float | None]] = {
    "best val acc": lambda run: run.best_val_acc,
    "test acc": lambda run: run.test_acc,
}


def find_baseline(groups: Sequence[Group], name: str) -> Group:
    """The group named ``name`` (the report's ``group`` column, W&B's group) or holding the run folder ``name``."""
    for group in groups:
        if group.name == name or any(run.path.resolve() == Path(name).resolve() for run in group.runs):
            return group
    known = ", ".join(g.name for g in groups)
    raise CnnbenchError(
        f"--baseline {name}: no such group among the runs given, nor one of their run folders (groups: {known})"
    )


def per_seed(group: Group, metric: Callable[[RunRecord], float | None]) -> dict[int, float] | list[float]:
    """The group's values in percent, by seed when every run has its own seed (else a plain list)."""
    pairs = [(run.config.get("seed_everything"), metric(run)) for run in group.runs]
    pairs = [(seed, 100 * value) for seed, value in pairs if value is not None]
    seeds = [seed for seed, _ in pairs]
    if all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds):
        return dict(pairs)
    return [value for _, value in pairs]


def verdict(d: Difference) -> str:
    if d.within_noise:
        return "within noise"
    return "better" if d.diff > 0 else "worse"


def baseline_rows(groups: Sequence[Group], baseline: Group) -> list[list[str]]:
    """One row per other group and metric that both groups have for at least two runs."""
    rows = []
    for group in groups:
        if group is baseline:
            continue
        for label, metric in METRICS.items():
            base, other = per_seed(baseline, metric), per_seed(group, metric)
            d = compare(base, other)
            if d is None:
                continue
            test = f"paired ({len(other)} seeds)" if d.method == "paired" else f"Welch (df {d.dof:.1f})"
            rows.append([
                group.name, group.runs[0].model, label, str(len(other)), str(len(base)), f"{d.diff:+.2f}",
                f"[{d.low:+.2f}, {d.high:+.2f}]", test, verdict(d),
            ])  # fmt: skip
    return rows


def markdown(rows: list[list[str]]) -> str:
    align = ["---:" if c in ("n", "baseline n", "difference") else "---" for c in COLUMNS]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(align) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])
