"""Readers of the on-disk formats torchvision downloads, shared by the dataset families: pickled CIFAR batches, IDX.

We read the files ourselves (rather than through torchvision's dataset classes) so that a whole split lands in
one uint8 NCHW tensor; the files are checked against their MD5s by ``checksums.py`` (which accepts a folder's own
``checksums.md5``, as the tests' tiny files have) and every reader names a truncated or malformed file.
torchvision is still used to download.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnbench.data.datasets.checksums import damaged_file
from cnnbench.data.datasets.registry import Split


def _unpickle(path: Path) -> dict[str, Any]:
    # The CIFAR pickles were written by Python 2: latin1 maps their byte strings to str one to one.
    with damaged_file(path), open(path, "rb") as f:
        content = pickle.load(f, encoding="latin1")
        if not isinstance(content, dict):
            raise TypeError(f"it holds a {type(content).__name__}, not a dict")
        return content


def pickle_batches(label_key: str, image_size: int = 32) -> Callable[[Sequence[Path]], Split]:
    """A reader of CIFAR-style pickled batches: ``data`` rows of channel-major pixels, labels under ``label_key``.

    CIFAR-10 keeps its labels under ``labels``; CIFAR-100 has ``fine_labels`` and ``coarse_labels``.
    """

    def read(files: Sequence[Path]) -> Split:
        images, labels = [], []
        for path in files:
            batch = _unpickle(path)
            with damaged_file(path):
                images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, image_size, image_size))
                labels.extend(int(label) for label in batch[label_key])
        return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64)

    return read


def pickled_names(file: str, key: str) -> Callable[[Path], list[str] | None]:
    """A spec's ``stored_classes``: the names listed under ``key`` in the pickle ``file``, None if it is absent."""

    def read(folder: Path) -> list[str] | None:
        path = folder / file
        if not path.exists():
            return None
        with damaged_file(path):
            return [str(name) for name in _unpickle(path)[key]]

    return read


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (uncompressed, or the ``.gz`` beside it): big-endian header, then uint8 data."""
    source = path if path.exists() else path.with_name(path.name + ".gz")
    with damaged_file(source):
        with (open if source is path else gzip.open)(source, "rb") as f:
            raw = f.read()
        magic = int.from_bytes(raw[0:4], "big")
        if len(raw) < 4 or magic >> 8 != 0x08:  # 0x08 = unsigned byte data
            raise ValueError(f"not a uint8 IDX file (magic {magic:#x})")
        ndim = magic & 0xFF
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        size = 4 + 4 * ndim + int(np.prod(shape))
        if len(raw) != size:  # a truncated file, or one with trailing bytes: its header says how long it is
            raise ValueError(f"{len(raw)} bytes, its header {shape} needs {size}")
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_idx_split(files: Sequence[Path]) -> Split:
    """One MNIST-style split from its two IDX files, ``(images, labels)``: grayscale images (N, H, W)."""
    images_file, labels_file = files
    images = read_idx(images_file)
    labels = read_idx(labels_file)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
