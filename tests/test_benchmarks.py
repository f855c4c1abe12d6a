"""The benchmarks' timing on a GPU, checked on the CPU: clocks are read only after the device is synchronized."""

from __future__ import annotations

import importlib.util
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


def test_overhead_summary_reports_median_spread_and_time_per_step() -> None:
    overhead = load("overhead")
    row = overhead.summary([1000.0, 1280.0, 640.0], batch=128)
    assert row == {"img_s": 1000, "min": 640, "max": 1280, "us_per_step": 128000.0}


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


def test_overhead_per_round_ratio_summary() -> None:
    overhead = load("overhead")
    assert overhead.summary_ratio([0.95, 1.0, 0.9]) == {"median": 0.95, "min": 0.9, "max": 1.0}


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
