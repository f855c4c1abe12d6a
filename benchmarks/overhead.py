"""Lightning's cost: training images/s of ``cnnbench fit`` against a plain PyTorch loop doing the same work.

Both sides train the same model with the same seed, optimizer, per-step LR schedule (cnnbench's defaults: one
warmup epoch, a cosine decay over ``MAX_EPOCHS`` epochs), batch size and data: the fast data path's index batches,
gathered and augmented by the data module's own ``on_after_batch_transfer``. Same values matter, not only same
shapes: a CPU's kernel time depends on the data (max-pooling and ReLU branch on it), so a side whose weights took
another path runs at another speed.
``cnnbench`` runs as a user runs it (progress bar, CSV logger, checkpoints), with validation off so both sides
only train. The timed window is the same on both sides: from the end of the ``--warmup``-th step to the end of
the last step. A third side, ``lightning_floor``, is Lightning's own loop with everything optional off (a bare
LightningModule whose training_step only returns the loss; no callbacks, logger, progress bar or metrics): the
best a Lightning codebase can do. Sides are interleaved, ``--repeats`` times (each round in a rotated order, so no
side always runs first or after the same one); medians, minima and maxima are reported, with the per-step time of
each side in microseconds and cnnbench's extra time per step over the floor. The window ends before cnnbench saves
the stop's checkpoint; the time of one save is reported apart (``checkpoint_ms``). On a GPU every clock is read after a
``torch.cuda.synchronize()``, the plain loop copies with ``non_blocking`` and all sides run the cuDNN autotuner
(as ``cnnbench fit`` does). Prints a table, then one JSON line (the first model's figures, every model under
``models``; ``vs_floor`` is cnnbench's speed as a fraction of the floor's, the ratio of the medians;
``vs_floor_per_round`` is the median, minimum and maximum of the rounds' own ratios: each round times the sides
minutes apart at most, so its ratio is spared most of a shared machine's drift between rounds).

    python benchmarks/overhead.py --data-dir ../shared/data
    python benchmarks/overhead.py --data-dir ../shared/data --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from cnnbench.cli import CnnbenchCLI
from cnnbench.data import ImageDataModule
from cnnbench.models import create_model
from cnnbench.optim import WarmupDecayLR, param_groups, schedule_steps

SEED = 42  # every side seeds its model and data alike
MAX_EPOCHS = 10  # the schedule's span on every side (cnnbench fit's default); max_steps stops far earlier
WARMUP_EPOCHS = 1  # cnnbench's default warmup


def synchronize() -> None:
    """Wait for the GPU's queued work, so that a clock read next counts it (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock(Callback):
    """Time from the end of step ``warmup`` to the end of the last step (``max_steps``), the device synchronized at
    both ends only: a sync at every step would stall the GPU queue the loop keeps full."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step == self.warmup:
            synchronize()
            self.start = time.perf_counter()
        elif trainer.global_step == trainer.max_steps:
            synchronize()
            self.end, self.steps = time.perf_counter(), trainer.global_step - self.warmup


def cnnbench_cli(name: str, data_dir: str, batch: int, steps: int, root: str) -> CnnbenchCLI:
    """``cnnbench fit`` as a user runs it, training only (validation off), not started yet."""
    args = [
        f"--model={name}", f"--data.data_dir={data_dir}", "--data.fast=true", f"--data.batch_size={batch}",
        "--data.download=false", f"--trainer.max_steps={steps}", "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0", f"--trainer.default_root_dir={root}", "--trainer.accelerator=auto",
        f"--trainer.max_epochs={MAX_EPOCHS}", f"--model.warmup_epochs={WARMUP_EPOCHS}", f"--seed_everything={SEED}",
    ]  # fmt: skip
    return CnnbenchCLI(args=args, run=False)


def cnnbench_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int, root: str) -> float:
    cli = cnnbench_cli(name, data_dir, batch, steps, root)
    clock = StepClock(warmup)
    # First, so that it reads the clock at the last step before the checkpoint callbacks (which Lightning runs last)
    # save the stop's last.ckpt: a save every epoch or 500 steps is not a per-step cost (see checkpoint_ms).
    cli.trainer.callbacks.insert(0, clock)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    CHECKPOINT_MS.append(save_ms(cli.trainer, Path(root) / "probe.ckpt"))
    return clock.steps * batch / (clock.end - clock.start)


CHECKPOINT_MS: list[float] = []  # cnnbench's checkpoint save times, one per cnnbench timing


def save_ms(trainer: Trainer, path: Path) -> float:
    """Milliseconds of one full checkpoint save, as cnnbench writes last.ckpt (atomically, through its CheckpointIO)."""
    synchronize()
    start = time.perf_counter()
    trainer.save_checkpoint(path)
    return (time.perf_counter() - start) * 1000


def sgd_with_schedule(model: torch.nn.Module, steps_per_epoch: int) -> tuple[torch.optim.SGD, WarmupDecayLR]:
    """cnnbench's default optimizer and per-step schedule, as the floor and the plain loop run them."""
    optimizer = torch.optim.SGD(param_groups(model, 5e-4, False), lr=0.05, momentum=0.9, nesterov=True)
    scheduler = WarmupDecayLR(optimizer, total_steps=MAX_EPOCHS * steps_per_epoch,
                              warmup_steps=WARMUP_EPOCHS * steps_per_epoch)  # fmt: skip
    return optimizer, scheduler


class BareModule(LightningModule):
    """The plain loop's work as a LightningModule: forward, loss, the same optimizer and per-step schedule."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.model = create_model(name, num_classes=10, in_channels=3, image_size=32)
        self.criterion = torch.nn.CrossEntropyLoss()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return self.criterion(self.model(images), labels)

    def configure_optimizers(self) -> Any:
        optimizer, scheduler = sgd_with_schedule(self.model, schedule_steps(self.trainer)[1])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lightning_floor_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int) -> float:
    seed_everything(SEED, verbose=False)
    data = ImageDataModule(data_dir=data_dir, batch_size=batch, fast=True, download=False)
    clock = StepClock(warmup)
    trainer = Trainer(
        max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock], accelerator="auto", devices=1,
        benchmark=True, max_epochs=MAX_EPOCHS,
    )  # fmt: skip
    trainer.fit(BareModule(name), datamodule=data)
    return clock.steps * batch / (clock.end - clock.start)


def raw_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True  # as cnnbench fit and the floor's Trainer(benchmark=True)
    seed_everything(SEED, verbose=False)
    data = ImageDataModule(data_dir=data_dir, batch_size=batch, fast=True, download=False)
    data.setup("fit")
    model = create_model(name, num_classes=10, in_channels=3, image_size=32).to(device)
    optimizer, scheduler = sgd_with_schedule(model, len(data.train_dataloader()))
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    step, start = 0, 0.0
    while step < steps:
        for index_batch in data.train_dataloader():
            indices, seeds = (t.to(device, non_blocking=True) for t in (index_batch.indices, index_batch.seeds))
            moved = index_batch._replace(indices=indices, seeds=seeds)
            images, labels = data.on_after_batch_transfer(moved, 0)
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == warmup:
                synchronize()
                start = time.perf_counter()
            if step == steps:
                break
    synchronize()
    return (steps - warmup) * batch / (time.perf_counter() - start)


SIDES = ("cnnbench", "lightning_floor", "raw")


def summary(rates: list[float], batch: int) -> dict[str, float]:
    """Median, min and max img/s of one side, and its median time per step in microseconds."""
    median = statistics.median(rates)
    return {"img_s": round(median), "min": round(min(rates)), "max": round(max(rates)),
            "us_per_step": round(batch / median * 1e6, 1)}  # fmt: skip


def summary_ratio(ratios: list[float]) -> dict[str, float]:
    """Median, min and max of per-round ratios."""
    return {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["simple_cnn", "alexnet_cifar7"])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="Steps per timing (default 100; 500 on a GPU).")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="simple_cnn only, 40 steps, 3 repeats.")
    args = parser.parse_args()
    # A GPU step of a small model takes well under a millisecond: more steps keep each timing far above the
    # clock's and the launch queue's granularity.
    steps = args.steps or (500 if torch.cuda.is_available() else 100)
    models, steps, repeats = (["simple_cnn"], 40, 3) if args.quick else (args.models, steps, args.repeats)

    results = []
    with tempfile.TemporaryDirectory() as root:
        measure = {
            "cnnbench": lambda name: cnnbench_img_s(name, args.data_dir, args.batch_size, steps, args.warmup, root),
            "lightning_floor": lambda name: lightning_floor_img_s(name, args.data_dir, args.batch_size, steps,
                                                                  args.warmup),
            "raw": lambda name: raw_img_s(name, args.data_dir, args.batch_size, steps, args.warmup),
        }  # fmt: skip
        for name in models:
            rates: dict[str, list[float]] = {side: [] for side in SIDES}
            for round_ in range(repeats):
                for k in range(len(SIDES)):
                    side = SIDES[(round_ + k) % len(SIDES)]
                    rates[side].append(measure[side](name))
            row: dict[str, Any] = {"model": name, **{side: summary(rates[side], args.batch_size) for side in SIDES}}
            ours, floor, raw = (row[side] for side in SIDES)
            row["vs_floor"] = round(ours["img_s"] / floor["img_s"], 3)
            pairs = zip(rates["cnnbench"], rates["lightning_floor"], strict=True)
            row["vs_floor_per_round"] = summary_ratio([ours_rate / floor_rate for ours_rate, floor_rate in pairs])
            row["vs_raw"] = round(ours["img_s"] / raw["img_s"], 3)
            row["floor_vs_raw"] = round(floor["img_s"] / raw["img_s"], 3)
            row["extra_us_per_step_vs_floor"] = round(ours["us_per_step"] - floor["us_per_step"], 1)
            row["checkpoint_ms"] = round(statistics.median(CHECKPOINT_MS[-repeats:]), 1)
            results.append(row)
            for side in SIDES:
                r = row[side]
                print(f"{name:<16} {side:<16} {r['img_s']:>8,} img/s (min {r['min']:,}, max {r['max']:,}) "
                      f"{r['us_per_step']:>9,.1f} us/step", flush=True)  # fmt: skip
            per_round = row["vs_floor_per_round"]
            print(f"{name:<16} cnnbench / floor per round: median {per_round['median']:.3f} "
                  f"(min {per_round['min']:.3f}, max {per_round['max']:.3f})", flush=True)  # fmt: skip
            print(f"{name:<16} cnnbench / floor {row['vs_floor']:.3f}   cnnbench / plain loop {row['vs_raw']:.3f}   "
                  f"floor / plain loop {row['floor_vs_raw']:.3f}   cnnbench's extra time per step over the floor "
                  f"{row['extra_us_per_step_vs_floor']:,.1f} us; a checkpoint save (each epoch end, every 500 "
                  f"steps) {row['checkpoint_ms']:,.1f} ms", flush=True)  # fmt: skip
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"device": device, "batch_size": args.batch_size, "steps": steps, "repeats": repeats,
                      **results[0], "models": results}))  # fmt: skip


if __name__ == "__main__":
    main()
