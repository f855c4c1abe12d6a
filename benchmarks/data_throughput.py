"""Images/s of CIFAR-10 training batches: cnnbench's fast path against the torchvision DataLoader paths.

All paths produce normalized float batches of 128 with the same augmentation (4-pixel-padded random crop and
horizontal flip) from the real files in ``--data-dir``:

- ``fast``: ``ImageDataModule(fast=True)``; batches gathered and augmented as tensor ops (on CUDA if present);
- ``torchvision``: ``torchvision.datasets.CIFAR10`` with PIL transforms (the blog-post path), 0 and 2 workers;
- ``per-image``: ``ImageDataModule(fast=False)``: cnnbench's uint8-tensor dataset with per-image v2 transforms.

Each path is timed ``--repeats`` times over ``--batches`` batches after a warm-up; medians are reported, side by
side from one run. Every path ends with its batch on the training device (the torchvision and per-image paths
copy from pinned memory without blocking), and on a GPU each clock is read after a synchronize. Prints a table, then
one JSON line (``fast_img_s``, ``torchvision_img_s``: the better of its worker settings, ``ratio``).

    python benchmarks/data_throughput.py --data-dir ../shared/data
    python benchmarks/data_throughput.py --data-dir ../shared/data --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torchvision
from torchvision import transforms

from cnnbench.data import ImageDataModule

BATCH = 128


def timed(make_batches: Callable[[], Iterator], batches: int, repeats: int, sync: Callable[[], None]) -> float:
    """Median images/s over ``repeats`` passes of ``batches`` batches (one untimed warm-up pass first)."""
    rates = []
    for attempt in range(repeats + 1):
        iterator = make_batches()
        sync()
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        sync()
        if attempt:  # the first pass starts workers and fills caches
            rates.append(batches * BATCH / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batches", type=int, default=100, help="Batches per timing.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20 batches per timing (under 2 minutes).")
    args = parser.parse_args()
    batches = 20 if args.quick else args.batches
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    fast = ImageDataModule(data_dir=args.data_dir, batch_size=BATCH, fast=True, download=False)
    fast.setup("fit")

    def fast_batches() -> Iterator:
        for batch in fast.train_dataloader():
            batch = batch._replace(indices=batch.indices.to(device), seeds=batch.seeds.to(device))
            yield fast.on_after_batch_transfer(batch, 0)

    results = {"fast": timed(fast_batches, batches, args.repeats, sync)}

    blog = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(fast.mean, fast.std),
    ])  # fmt: skip
    cifar = torchvision.datasets.CIFAR10(args.data_dir, train=True, transform=blog, download=False)

    def on_device(loader: torch.utils.data.DataLoader) -> Iterator:
        """The loader's batches on the training device, as a training loop receives them (pinned, non-blocking)."""
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    pin = device.type == "cuda"
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(cifar, batch_size=BATCH, shuffle=True, num_workers=workers,
                                             persistent_workers=workers > 0, pin_memory=pin)  # fmt: skip
        results[f"torchvision_w{workers}"] = timed(lambda loader=loader: on_device(loader), batches, args.repeats, sync)

    per_image = ImageDataModule(data_dir=args.data_dir, batch_size=BATCH, num_workers=2, fast=False, download=False)
    per_image.setup("fit")
    loader = per_image.train_dataloader()
    results["per_image_w2"] = timed(lambda: on_device(loader), batches, args.repeats, sync)

    for name, img_s in results.items():
        print(f"{name:<16} {img_s:>12,.0f} img/s")
    torchvision_img_s = max(results["torchvision_w0"], results["torchvision_w2"])
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name()
                if device.type == "cuda"
                else f"CPU, {torch.get_num_threads()} threads",
                "batch_size": BATCH,
                "fast_img_s": round(results["fast"]),
                "torchvision_img_s": round(torchvision_img_s),
                "ratio": round(results["fast"] / torchvision_img_s, 2),
                "all_img_s": {k: round(v) for k, v in results.items()},
            }
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
