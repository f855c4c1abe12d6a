"""Training throughput of every registered model: images/s, seconds per epoch and peak memory.

One training step is forward, cross-entropy, backward and an SGD step on a fixed random batch, so the number
is the model's own cost (no data loading). Each model is measured in its own subprocess so that its peak
memory (RSS on CPU, allocated on CUDA) is its own. Prints a table, then one JSON line.

    python benchmarks/models.py                        # all models, CPU, fp32
    python benchmarks/models.py --precision bf16 resnet18 vgg11
    python benchmarks/models.py --quick                # smoke measure, under 2 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from cnnbench.data import ImageDataModule
from cnnbench.data.datasets import DATASETS
from cnnbench.models import create_model, list_models
from cnnbench.models.summary import describe, input_shape

# Images per epoch: the train split less the data module's default --data.val_size, held out for validation.
VAL_SIZE: int = inspect.signature(ImageDataModule).parameters["val_size"].default
QUICK_MODELS = ["simple_cnn", "lenet5", "alexnet_cifar", "resnet18"]


def measure(name: str, dataset: str, batch_size: int, steps: int, repeats: int, precision: str, device: str) -> dict:
    """Median images/s over ``repeats`` timings of ``steps`` training steps, after one warm-up timing."""
    in_channels, image_size = input_shape(name, dataset)
    num_classes = len(DATASETS[dataset].classes)
    model = create_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch_size, in_channels, image_size, image_size, device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")

    def timed() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            with autocast:
                loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed()  # warm-up: allocator, kernels' first calls
    rates = [steps * batch_size / timed() for _ in range(repeats)]
    img_s = statistics.median(rates)
    if device == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    info = describe(name, in_channels, image_size, num_classes)
    return {
        "model": name,
        "input": f"{in_channels}x{image_size}x{image_size}",
        "params": info.params,
        "mflops": round(info.mflops, 1),
        "img_s": round(img_s, 1),
        "s_per_epoch": round((DATASETS[dataset].train_size - VAL_SIZE) / img_s, 1),
        "peak_mib": round(peak_mib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="Models to measure (default: all; --quick: a few).")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="cifar10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="Training steps per timing.")
    parser.add_argument("--repeats", type=int, default=5, help="Timings per model; the median is reported.")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="A few small models, 1 step per timing.")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: measure in this process
    args = parser.parse_args()

    if args.one:
        (name,) = args.models
        print(
            json.dumps(
                measure(name, args.dataset, args.batch_size, args.steps, args.repeats, args.precision, args.device)
            )
        )
        return

    names = args.models or (QUICK_MODELS if args.quick else list_models())
    steps = 1 if args.quick else args.steps
    rows = []
    for name in names:
        command = [
            sys.executable,
            __file__,
            name,
            "--one",
            "--dataset",
            args.dataset,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(steps),
            "--repeats",
            str(args.repeats),
            "--precision",
            args.precision,
            "--device",
            args.device,
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['model']:<15} {r['input']:>10} {r['params']:>12,} {r['mflops']:>9,.1f} MFLOPs "
            f"{r['img_s']:>9,.1f} img/s {r['s_per_epoch']:>9,.1f} s/epoch {r['peak_mib']:>7,} MiB",
            flush=True,
        )
    hardware = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        json.dumps(
            {
                "device": hardware,
                "precision": args.precision,
                "batch_size": args.batch_size,
                "dataset": args.dataset,
                "models": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
