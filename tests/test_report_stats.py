"""Confidence intervals of ``cnnbench report`` and its ``--baseline`` comparison, against numbers worked out by hand."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from cnnbench.report import stats
from tests.helpers.runs import fake_run, main

# Student's t, two-sided 95% (the 0.975 quantile), from a printed t table, by degrees of freedom.
PUBLISHED_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
    21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
}  # fmt: skip
# The same quantiles to 7 digits (df 2 and 4), for the hand-computed intervals below.
T95_DF2, T95_DF4 = 4.3026527, 2.7764451


@pytest.mark.parametrize("n", range(2, 31))
def test_the_confidence_interval_of_n_seeds_uses_the_exact_t_quantile(n: int) -> None:
    values = [float(k % 3) for k in range(n)]  # any spread will do: the half-width is t * std / sqrt(n)
    mean, std, half = stats.mean_std_ci(values)
    assert round(half * math.sqrt(n) / std, 3) == PUBLISHED_T95[n - 1]


# Baseline: seeds 0, 1, 2 reach 70, 74, 78 (mean 74, variance ((-4)^2 + 0 + 4^2) / 2 = 16).
BASELINE = {0: 70.0, 1: 74.0, 2: 78.0}
# Same seeds: per-seed differences 2, 1.5, 2.5 -> mean 2, sd sqrt((0 + 0.25 + 0.25) / 2) = 0.5,
# half-width t(2) * 0.5 / sqrt(3) = 4.3026527 * 0.2886751 = 1.2420690: [0.757931, 3.242069], beyond noise.
SAME_SEEDS = {0: 72.0, 1: 75.5, 2: 80.5}
PAIRED = (2.0, 2.0 - 1.2420690, 2.0 + 1.2420690, 2)
# Other seeds: 72, 80, 76 (mean 76, variance (16 + 16 + 0) / 2 = 16). Welch: each mean's variance 16/3, so
# se = sqrt(32/3) = 3.2659863 and df = (32/3)^2 / ((16/3)^2/2 + (16/3)^2/2) = 4 exactly;
# half-width t(4) * se = 2.7764451 * 3.2659863 = 9.0678315: [-7.067832, 11.067832], within noise.
OTHER_SEEDS = {3: 72.0, 4: 80.0, 5: 76.0}
WELCH = (2.0, 2.0 - 9.0678315, 2.0 + 9.0678315, 4)


def test_paired_and_welch_differences_match_the_hand_computed_intervals() -> None:
    assert T95_DF2 * 0.5 / math.sqrt(3) == pytest.approx(1.2420690, abs=1e-6)  # the comments' arithmetic
    assert T95_DF4 * math.sqrt(32 / 3) == pytest.approx(9.0678315, abs=1e-6)
    d = stats.compare(BASELINE, SAME_SEEDS)
    assert d.method == "paired" and not d.within_noise
    assert (d.diff, d.low, d.high, d.dof) == pytest.approx(PAIRED, abs=1e-5)
    d = stats.compare(BASELINE, OTHER_SEEDS)
    assert d.method == "welch" and d.within_noise
    assert (d.diff, d.low, d.high, d.dof) == pytest.approx(WELCH, abs=1e-5)
    # The same values without their seeds cannot be paired: Welch, whose interval is far wider.
    d = stats.compare(list(BASELINE.values()), list(SAME_SEEDS.values()))
    assert d.method == "welch" and d.within_noise


def test_report_baseline_pairs_by_seed_or_falls_back_to_welch(
    tmp_path: Path, capsys: pytest.CaptureFixture, saved_figures: dict[str, Figure]
) -> None:
    root, out = tmp_path / "runs", tmp_path / "report"
    for lr, values in ((0.1, BASELINE), (0.2, SAME_SEEDS), (0.3, OTHER_SEEDS)):
        for seed, acc in values.items():
            fake_run(root / f"lr{lr}" / f"seed{seed}", lr, seed, acc)
    main(["report", str(root), f"--out={out}", "--figures=none"])
    with open(out / "groups.csv", newline="") as f:
        names = [row["group"] for row in csv.DictReader(f)]
    assert len(names) == 3 and all(name.startswith("cifar10-simple_cnn-") for name in names)
    # Three recipes of one model on one dataset: the group curves' legend tells them apart by the group column.
    labels = [line.get_label() for line in saved_figures["group_curves.png"].axes[0].get_lines()]
    assert labels == [f"{name} (n=3)" for name in names]
    main(["report", str(root), f"--out={out}", "--figures=none", f"--baseline={names[0]}"])
    with open(out / "baseline.csv", newline="") as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(names[1:])  # the baseline is not compared with itself; no test acc: one metric each
    paired, welch = rows[names[1]], rows[names[2]]
    assert (paired["difference"], paired["95% CI"]) == ("+2.00", "[+0.76, +3.24]")
    assert paired["test"] == "paired (3 seeds)" and paired["verdict"] == "better"
    assert (welch["difference"], welch["95% CI"]) == ("+2.00", "[-7.07, +11.07]")
    assert welch["test"] == "Welch (df 4.0)" and welch["verdict"] == "within noise"
    assert "within noise" in capsys.readouterr().out
    # A run folder of the baseline names its group too.
    main(["report", str(root), f"--out={out}", "--figures=none", f"--baseline={root / 'lr0.1' / 'seed1'}"])
    with open(out / "baseline.csv", newline="") as f:
        assert {row["group"] for row in csv.DictReader(f)} == set(names[1:])
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(root), f"--out={out}", "--figures=none", "--baseline=cifar10-lenet5-0000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--baseline cifar10-lenet5-0000: no such group" in err
