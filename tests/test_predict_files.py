"""Image files given to ``predict``: oversized ones are refused by name, like other unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnbench.data.files import read_images
from cnnbench.errors import CnnbenchError


def write_png(path: Path, side: int) -> Path:
    Image.fromarray(np.full((side, side, 3), 128, dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("limit", [3000, 1000], ids=["over the limit (PIL warns)", "over twice the limit (PIL raises)"])
def test_an_image_over_the_pixel_limit_is_skipped_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # A 64x64 file (4096 pixels) stands in for a decompression bomb: the limit is lowered instead of the file grown.
    small, large = write_png(tmp_path / "small.png", 16), write_png(tmp_path / "large.png", 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    images, kept, skipped = read_images([small, large], channels=3, size=32)
    assert kept == [small] and images.shape == (1, 3, 32, 32)
    (line,) = skipped
    assert line.startswith(f"{large}: too large to decode safely") and "4096 pixels" in line


def test_only_oversized_files_is_an_error_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    large = write_png(tmp_path / "large.png", 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with pytest.raises(CnnbenchError, match="none of the files could be read as an image:\n  .*large.png: too large"):
        read_images([large], channels=1, size=28)
