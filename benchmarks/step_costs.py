"""What each per-step piece of ``cnnbench fit`` costs: microseconds per training step, measured inside a run.

``overhead.py`` compares whole runs, and on a shared machine its ratios move by a few percent from run to run.
This script times the pieces themselves, in the run that ``overhead.py`` times (simple_cnn, batch 128, training
only): every per-batch hook of every callback (the progress bar, checkpoints, throughput, RNG isolation, the
divergence guard, ...), the module's train metric updates, its ``self.log`` calls and the loggers' writes. Each
piece's total is divided by the number of steps; their sum, as a share of the median step time, is cnnbench's own
cost per step. Code running between heavy kernels finds cold caches, so a piece costs several times what it does
in a micro-benchmark: only a measurement inside the loop tells. Medians over ``--repeats`` runs are printed, then
one JSON line.

    python benchmarks/step_costs.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback
from overhead import StepClock, cnnbench_cli

# The callback hooks Lightning calls at every training batch.
TRAIN_BATCH_HOOKS = (
    "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_before_zero_grad",
)  # fmt: skip


def timed(costs: dict[str, float], key: str, fn: Callable[..., Any], clock: StepClock) -> Callable[..., Any]:
    """``fn``, adding the seconds of each call inside the clock's window to ``costs[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not (clock.start and not clock.end):  # warmup (first calls set things up) or the stop's checkpoint
            return fn(*args, **kwargs)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            costs[key] += time.perf_counter() - start

    return wrapper


def measure(model: str, data_dir: str, batch: int, steps: int, warmup: int) -> tuple[dict[str, float], float]:
    """(microseconds per step of each piece, the run's time per step in microseconds)."""
    costs: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as root:
        cli = cnnbench_cli(model, data_dir, batch, steps, root)
        clock = StepClock(warmup)
        for callback in cli.trainer.callbacks:
            for hook in TRAIN_BATCH_HOOKS:
                fn = getattr(callback, hook, None)
                if callable(fn) and getattr(type(callback), hook) is not getattr(Callback, hook):  # not a no-op
                    setattr(callback, hook, timed(costs, f"{type(callback).__name__}.{hook}", fn, clock))
        module = cli.model
        for metric in ("train_loss", "train_acc"):
            submodule = getattr(module, metric)
            submodule.update = timed(costs, f"{metric}.update", submodule.update, clock)
        module.log = timed(costs, "LightningModule.log", module.log, clock)  # type: ignore[method-assign]
        for logger in cli.trainer.loggers:
            logger.log_metrics = timed(costs, f"{type(logger).__name__}.log_metrics", logger.log_metrics, clock)
        cli.trainer.callbacks.insert(0, clock)  # first: its window closes before the stop's checkpoint is saved
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    per_step = {key: seconds / clock.steps * 1e6 for key, seconds in costs.items()}
    return per_step, (clock.end - clock.start) / clock.steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="simple_cnn")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [measure(args.model, args.data_dir, args.batch_size, args.steps, args.warmup) for _ in range(args.repeats)]
    keys = sorted({key for pieces, _ in runs for key in pieces})
    pieces = {key: round(statistics.median(run.get(key, 0.0) for run, _ in runs), 1) for key in keys}
    step_us = statistics.median(step for _, step in runs)
    total = round(sum(pieces.values()), 1)
    for key, us in sorted(pieces.items(), key=lambda item: -item[1]):
        print(f"{key:<48} {us:>8.1f} us/step", flush=True)
    print(f"{'total':<48} {total:>8.1f} us/step = {total / step_us:.1%} of a {step_us:,.0f} us step", flush=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"device": device, "model": args.model, "batch_size": args.batch_size, "steps": args.steps,
                      "repeats": args.repeats, "step_us": round(step_us, 1), "total_us": total,
                      "share": round(total / step_us, 4), "pieces_us": pieces}))  # fmt: skip


if __name__ == "__main__":
    main()
