"""Image files to predict on: found in folders or lists, read with PIL and converted as the training images were."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from cnnbench.data.datasets import Split
from cnnbench.errors import CnnbenchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the image files (by suffix) in given folders, sorted; a path that is missing is an error."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise CnnbenchError(f"--data.predict_files: {path} does not exist")
    if not found:
        raise CnnbenchError(f"--data.predict_files: no image files in {', '.join(map(str, paths))}")
    return found


def read_images(files: Sequence[Path], channels: int, size: int) -> tuple[Tensor, list[Path], list[str]]:
    """uint8 (N, channels, size, size) of the readable files, those files, and one line per file skipped.

    Any size or mode is converted as the dataset's images are: RGB (or luma, ITU-R 601, for one channel)
    at the dataset's own resolution; the data module then applies the training resize and normalization.
    """
    images, kept, skipped = [], [], []
    for file in files:
        try:
            # PIL only warns about an image of more than Image.MAX_IMAGE_PIXELS pixels (up to twice that): such a
            # file, a decompression bomb or just huge, would take minutes and gigabytes to decode. Refuse it.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as image:
                    image = image.convert("L" if channels == 1 else "RGB")
                    array = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            skipped.append(f"{file}: too large to decode safely ({exc})")
            continue
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            skipped.append(f"{file}: {type(exc).__name__}: {exc}")
            continue
        images.append(torch.from_numpy(array.copy()).view(size, size, -1).permute(2, 0, 1))
        kept.append(file)
    if not images:
        raise CnnbenchError("none of the files could be read as an image:\n  " + "\n  ".join(skipped))
    return torch.stack(images), kept, skipped


def read_predict_split(paths: Sequence[str | Path], channels: int, size: int) -> tuple[Split, list[str]]:
    """The ``predict`` split of the image files in ``paths`` (labels -1) and their names, in order; each unreadable
    file is skipped with a warning that names it."""
    files = find_images(paths)
    images, kept, skipped = read_images(files, channels, size)
    for line in skipped:
        rank_zero_warn(f"cnnbench: skipped an unreadable file: {line}")
    return (images, torch.full((len(kept),), -1)), [str(f) for f in kept]
