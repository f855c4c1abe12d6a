"""A synthetic CIFAR-10 in the real on-disk format (``cifar-10-batches-py``), for checks that need no download."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cnnbench.data.datasets.checksums import MANIFEST, md5_of

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 10_000, test: int = 10_000, seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py`` (data_batch_1..5 of ``per_batch`` images, test_batch, batches.meta) of
    noisy images whose brightness pattern depends on the label (learnable); full size by default. Returns ``root``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, size=(10, 3 * 32 * 32))
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        labels = rng.integers(0, 10, size=n)
        data = np.clip(base[labels] + rng.integers(-40, 41, size=(n, 3 * 32 * 32)), 0, 255).astype(np.uint8)
        batch = {
            "batch_label": name,
            "data": data,
            "labels": labels.tolist(),
            "filenames": [f"{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch}, f, protocol=2)
    # Files with the official names but other bytes: the folder declares its own checksums, as a user's copy would.
    files = sorted(p for p in folder.iterdir() if p.name != MANIFEST)
    (folder / MANIFEST).write_text("".join(f"{md5_of(p)}  {p.name}\n" for p in files))
    return Path(root)
