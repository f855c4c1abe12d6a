"""Confidence intervals over seeds: a mean's, and a difference of two groups' means (paired by seed, or Welch's).

The t quantiles are SciPy's exact ones for any degrees of freedom, fractional ones (Welch) included: a table
rounded to the next listed df would make the intervals too narrow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LEVEL = 0.95


def t_quantile(dof: float, level: float = LEVEL) -> float:
    """The two-sided ``level`` quantile of Student's t with ``dof`` degrees of freedom (12.706 for 1 df at 95%)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def mean_std_ci(values: Sequence[float]) -> tuple[float, float, float] | None:
    """Mean, sample std and the half-width of the 95% confidence interval of the mean; NaNs for one value."""
    if not values:
        return None
    n, mean = len(values), statistics.fmean(values)
    if n == 1:
        return mean, math.nan, math.nan
    std = statistics.stdev(values)
    return mean, std, t_quantile(n - 1) * std / math.sqrt(n)


@dataclass(frozen=True)
class Difference:
    """``mean(other) - mean(baseline)`` with its 95% interval [low, high]."""

    diff: float
    low: float
    high: float
    dof: float
    method: str  # "paired" (by seed) or "welch"

    @property
    def within_noise(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired(baseline: Sequence[float], other: Sequence[float]) -> Difference | None:
    """Paired t on the per-seed differences ``other[i] - baseline[i]`` (same seed at the same index)."""
    diffs = [o - b for b, o in zip(baseline, other, strict=True)]
    if len(diffs) < 2:
        return None
    mean, std, half = mean_std_ci(diffs)  # type: ignore[misc]
    return Difference(mean, mean - half, mean + half, len(diffs) - 1, "paired")


def welch(baseline: Sequence[float], other: Sequence[float]) -> Difference | None:
    """Welch's t: unequal variances, Welch-Satterthwaite degrees of freedom."""
    if len(baseline) < 2 or len(other) < 2:
        return None
    va, vb = statistics.variance(other) / len(other), statistics.variance(baseline) / len(baseline)
    diff = statistics.fmean(other) - statistics.fmean(baseline)
    if va + vb == 0.0:  # identical values in each group: no spread, the difference is exact
        return Difference(diff, diff, diff, math.inf, "welch")
    dof = (va + vb) ** 2 / (va**2 / (len(other) - 1) + vb**2 / (len(baseline) - 1))
    half = t_quantile(dof) * math.sqrt(va + vb)
    return Difference(diff, diff - half, diff + half, dof, "welch")


def compare(
    baseline: Mapping[int, float] | Sequence[float], other: Mapping[int, float] | Sequence[float]
) -> Difference | None:
    """Paired by seed when both are ``{seed: value}`` over the same seeds, Welch's otherwise (None: too few runs)."""
    if isinstance(baseline, Mapping) and isinstance(other, Mapping):
        if set(baseline) == set(other) and len(baseline) >= 2:
            seeds = sorted(baseline)
            return paired([baseline[s] for s in seeds], [other[s] for s in seeds])
        baseline, other = list(baseline.values()), list(other.values())
    return welch(list(baseline), list(other))
