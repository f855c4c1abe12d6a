"""Image files given to ``predict``: oversized ones are refused by name, like other unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnbench.data.files import read_images
from cnnbench.errors import CnnbenchError
from tests.helpers.runs import CnnbenchCLI, TrainedRun, base_args, read_csv


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


def test_predict_on_image_files_of_any_size_and_mode(fitted: TrainedRun, tmp_path: Path) -> None:
    data_dir, root, _ = fitted
    on_split = CnnbenchCLI(args=["predict", *base_args(data_dir, root, "--ckpt_path=best")])
    first = read_csv(on_split.log_dir / "predictions.csv")[1]  # test image 0's row (read now: a predict within
    test_images = on_split.datamodule.splits["test"][0]  # the same second writes to the same folder)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(test_images[0].permute(1, 2, 0).numpy()).save(folder / "a_test0.png")  # a test image as is
    Image.fromarray(test_images[1].permute(1, 2, 0).numpy()).resize((96, 80)).convert("L").save(folder / "b_gray.jpg")
    Image.fromarray(test_images[2].permute(1, 2, 0).numpy()).convert("RGBA").save(folder / "c_rgba.png")
    (folder / "d_broken.png").write_bytes(b"not an image")
    args = base_args(data_dir, root, "--ckpt_path=best", f"--data.predict_files=[{folder}]")
    with pytest.warns(UserWarning, match=r"skipped an unreadable file: .*d_broken\.png: UnidentifiedImageError"):
        predicted = CnnbenchCLI(args=["predict", *args])
    rows = {Path(r[0]).name: r for r in read_csv(predicted.log_dir / "predictions.csv")[1:]}
    assert sorted(rows) == ["a_test0.png", "b_gray.jpg", "c_rgba.png"]
    header = read_csv(predicted.log_dir / "predictions.csv")[0]
    assert header[:9] == ["file", "pred", "pred_name", "top1", "top1_p", "top2", "top2_p", "top3", "top3_p"]
    for row in rows.values():
        assert row[3] == row[2] and float(row[4]) >= float(row[6]) >= float(row[8])
        assert sum(float(p) for p in row[9:]) == pytest.approx(1.0, abs=1e-4)
    # The PNG of test image 0 is predicted exactly as that image is in the test split.
    assert rows["a_test0.png"][1:] == first[1:]
