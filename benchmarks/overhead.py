"""Lightning's cost: training images/s of ``cnnbench fit`` against a plain PyTorch loop doing the same work.

Both sides train the same model with the same optimizer and per-step LR schedule, batch size and data: the
fast data path's index batches, gathered and augmented by the data module's own ``on_after_batch_transfer``.
``cnnbench`` runs as a user runs it (progress bar, CSV logger, checkpoints), with validation off so both sides
only train. The timed window is the same on both sides: from the end of the ``--warmup``-th step to the end of
the last step. A third side, ``lightning_floor``, is Lightning's own loop with everything optional off (a bare
LightningModule whose training_step only returns the loss; no callbacks, logger, progress bar or metrics): the
best a Lightning codebase can do. Sides alternate, ``--repeats`` times; medians are reported. Prints a table, then
one JSON line (``cnnbench_img_s``, ``raw_img_s``, ``ratio``, ``lightning_floor_img_s`` and ``floor_ratio`` of the
first model; every model under ``models``).

    python benchmarks/overhead.py --data-dir ../shared/data
    python benchmarks/overhead.py --data-dir ../shared/data --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from cnnbench.cli import CnnbenchCLI
from cnnbench.data import ImageDataModule
from cnnbench.models import create_model
from cnnbench.optim import WarmupDecayLR, param_groups


class StepClock(Callback):
    """Time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end, self.steps = time.perf_counter(), trainer.global_step - self.warmup


def cnnbench_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int, root: str) -> float:
    args = [
        f"--model={name}", f"--data.data_dir={data_dir}", "--data.fast=true", f"--data.batch_size={batch}",
        "--data.download=false", f"--trainer.max_steps={steps}", "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0", f"--trainer.default_root_dir={root}", "--trainer.accelerator=auto",
    ]  # fmt: skip
    cli = CnnbenchCLI(args=args, run=False)
    clock = StepClock(warmup)
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return clock.steps * batch / (clock.end - clock.start)


class BareModule(LightningModule):
    """The plain loop's work as a LightningModule: forward, loss, the same optimizer and per-step schedule."""

    def __init__(self, name: str, total_steps: int) -> None:
        super().__init__()
        self.model = create_model(name, num_classes=10, in_channels=3, image_size=32)
        self.criterion = torch.nn.CrossEntropyLoss()
        self.total_steps = total_steps

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return self.criterion(self.model(images), labels)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(param_groups(self.model, 5e-4, False), lr=0.05, momentum=0.9, nesterov=True)
        scheduler = WarmupDecayLR(optimizer, total_steps=self.total_steps, warmup_steps=self.total_steps // 10)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lightning_floor_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int) -> float:
    data = ImageDataModule(data_dir=data_dir, batch_size=batch, fast=True, download=False)
    clock = StepClock(warmup)
    trainer = Trainer(
        max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock], accelerator="auto", devices=1,
    )  # fmt: skip
    trainer.fit(BareModule(name, steps), datamodule=data)
    return clock.steps * batch / (clock.end - clock.start)


def raw_img_s(name: str, data_dir: str, batch: int, steps: int, warmup: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = ImageDataModule(data_dir=data_dir, batch_size=batch, fast=True, download=False)
    data.setup("fit")
    model = create_model(name, num_classes=10, in_channels=3, image_size=32).to(device)
    optimizer = torch.optim.SGD(param_groups(model, 5e-4, False), lr=0.05, momentum=0.9, nesterov=True)
    scheduler = WarmupDecayLR(optimizer, total_steps=steps, warmup_steps=steps // 10)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    step, start = 0, 0.0
    while step < steps:
        for index_batch in data.train_dataloader():
            moved = index_batch._replace(indices=index_batch.indices.to(device), seeds=index_batch.seeds.to(device))
            images, labels = data.on_after_batch_transfer(moved, 0)
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            if step == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (steps - warmup) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["simple_cnn", "alexnet_cifar7"])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="simple_cnn only, 40 steps, 5 repeats.")
    args = parser.parse_args()
    models, steps = (["simple_cnn"], 40) if args.quick else (args.models, args.steps)

    results = []
    with tempfile.TemporaryDirectory() as root:
        for name in models:
            ours, raw, floor = [], [], []
            for _ in range(args.repeats):
                ours.append(cnnbench_img_s(name, args.data_dir, args.batch_size, steps, args.warmup, root))
                raw.append(raw_img_s(name, args.data_dir, args.batch_size, steps, args.warmup))
                floor.append(lightning_floor_img_s(name, args.data_dir, args.batch_size, steps, args.warmup))
            row = {
                "model": name,
                "cnnbench_img_s": round(statistics.median(ours)),
                "raw_img_s": round(statistics.median(raw)),
                "lightning_floor_img_s": round(statistics.median(floor)),
            }
            row["ratio"] = round(row["cnnbench_img_s"] / row["raw_img_s"], 3)
            row["floor_ratio"] = round(row["lightning_floor_img_s"] / row["raw_img_s"], 3)
            results.append(row)
            print(f"{name:<16} cnnbench {row['cnnbench_img_s']:>8,} img/s   plain loop {row['raw_img_s']:>8,} img/s   "
                  f"ratio {row['ratio']:.3f}   bare Lightning {row['lightning_floor_img_s']:>8,} img/s   "
                  f"ratio {row['floor_ratio']:.3f}", flush=True)  # fmt: skip
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"device": device, "batch_size": args.batch_size, **results[0], "models": results}))


if __name__ == "__main__":
    main()
