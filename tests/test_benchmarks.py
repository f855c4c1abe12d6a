"""The benchmarks' timing on a GPU, checked on the CPU: clocks are read only after the device is synchronized."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_clock_synchronizes_before_each_of_its_two_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    overhead = load("overhead")
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: events.append("sync"))
    clock_reads = iter(range(100))
    monkeypatch.setattr(overhead.time, "perf_counter", lambda: events.append("clock") or float(next(clock_reads)))
    clock = overhead.StepClock(warmup=2)
    for step in range(1, 11):
        clock.on_train_batch_end(SimpleNamespace(global_step=step, max_steps=10))
    monkeypatch.setattr(overhead.time, "perf_counter", time.perf_counter)
    assert events == ["sync", "clock", "sync", "clock"]  # at step 2 and at step 10, nowhere between
    assert clock.steps == 8 and clock.end - clock.start == 1.0


def test_overhead_table_compares_the_sides_medians_and_pairs_each_rounds_timings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The figures main prints, from scripted timings: each side's median, spread and time per step, the ratio of the
    medians, and the median of the rounds' own ratios, each round's cnnbench timing over the same round's floor
    timing, though the sides run in a rotated order."""
    overhead = load("overhead")
    rates = {  # img/s of rounds 0-3; the medians (of the middle two) are 950, 1100 and 1500
        "cnnbench": [900.0, 1000.0, 800.0, 1200.0],
        "lightning_floor": [1000.0, 1250.0, 1000.0, 1200.0],
        "raw": [1000.0, 1000.0, 2000.0, 2000.0],
    }
    calls: list[str] = []

    def timed(side: str):  # noqa: ANN202
        def measure(*args: object) -> float:
            calls.append(side)
            if side == "cnnbench":  # as cnnbench_img_s does: one checkpoint save timed per cnnbench timing
                overhead.CHECKPOINT_MS.append(10.0 * calls.count(side))
            return rates[side][calls.count(side) - 1]

        return measure

    for side, function in zip(overhead.SIDES, ("cnnbench_img_s", "lightning_floor_img_s", "raw_img_s"), strict=True):
        monkeypatch.setattr(overhead, function, timed(side))
    monkeypatch.setattr(sys, "argv", ["overhead.py", "simple_cnn", "--repeats=4", "--batch-size=100", "--steps=5"])
    overhead.main()
    row = json.loads(capsys.readouterr().out.splitlines()[-1])

    assert calls[:6] == ["cnnbench", "lightning_floor", "raw", "lightning_floor", "raw", "cnnbench"]  # rotated
    assert row["cnnbench"] == {"img_s": 950, "min": 800, "max": 1200, "us_per_step": round(100 / 950 * 1e6, 1)}
    assert row["lightning_floor"] == {"img_s": 1100, "min": 1000, "max": 1250, "us_per_step": round(1e8 / 1100, 1)}
    assert row["raw"]["img_s"] == 1500
    assert row["vs_floor"] == round(950 / 1100, 3) and row["vs_raw"] == round(950 / 1500, 3)
    assert row["floor_vs_raw"] == round(1100 / 1500, 3)
    # Per round: 900/1000, 1000/1250, 800/1000, 1200/1200 = 0.9, 0.8, 0.8, 1.0 (by call order instead: other pairs).
    assert row["vs_floor_per_round"] == {"median": 0.85, "min": 0.8, "max": 1.0}
    assert row["extra_us_per_step_vs_floor"] == pytest.approx(round(1e8 / 950, 1) - round(1e8 / 1100, 1), abs=0.05)
    assert row["checkpoint_ms"] == 25.0  # the median of the four saves: 10, 20, 30, 40


def test_overhead_floor_runs_cnnbench_default_lr_schedule() -> None:
    """The floor must do cnnbench's work, value for value: a CPU's step time depends on the weights' path."""
    from cnnbench.models.simple_cnn import SimpleCNN

    overhead = load("overhead")
    trainer = SimpleNamespace(estimated_stepping_batches=300, num_training_batches=352, accumulate_grad_batches=1,
                              max_epochs=overhead.MAX_EPOCHS)  # fmt: skip

    def lrs(module: torch.nn.Module) -> list[float]:
        module.trainer = trainer  # the schedule reads only these sizes from its trainer
        config = module.configure_optimizers()
        optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
        seen = []
        for _ in range(overhead.MAX_EPOCHS * 352):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    ours = lrs(SimpleCNN(warmup_epochs=overhead.WARMUP_EPOCHS))
    floor = lrs(overhead.BareModule("simple_cnn"))
    assert floor == ours
    assert max(ours) == ours[352] and ours[0] < ours[100] < ours[352] > ours[1000]  # one warmup epoch, then decay


def test_step_costs_counts_only_calls_inside_the_clock_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warmup calls (first-call set-up) and the stop's checkpoint save must not count as per-step costs."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # step_costs imports its sibling overhead.py, as run as a script
    step_costs = load("step_costs")
    clock = step_costs.StepClock(warmup=1)
    costs: dict[str, float] = {"piece": 0.0}
    piece = step_costs.timed(costs, "piece", lambda: time.sleep(0.01) or "done", clock)
    assert piece() == "done" and costs["piece"] == 0.0  # before the window
    clock.start = 1.0
    assert piece() == "done" and costs["piece"] >= 0.01  # inside it
    clock.end, counted = 2.0, costs["piece"]
    assert piece() == "done" and costs["piece"] == counted  # after it
