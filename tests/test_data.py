"""The data module: splits, normalization, augmentation, shape facts, missing data (readers: test_datasets.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnbench.data import ImageDataModule, read_cifar10
from cnnbench.errors import DatasetNotFoundError
from tests.helpers.datasets import write_cifar10


def make_dm(data_dir: Path, **kwargs) -> ImageDataModule:
    """A set-up data module on the per-image path, whose loaders yield images (test_fast.py: same batches)."""
    kwargs = {"data_dir": str(data_dir), "val_size": 20, "batch_size": 8, "num_workers": 0, "download": False,
              "fast": False} | kwargs  # fmt: skip
    dm = ImageDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_split_is_seeded_disjoint_and_keeps_the_test_split(cifar_dir: Path) -> None:
    dm = make_dm(cifar_dir)
    train, val = dm.splits["train"][0], dm.splits["val"][0]
    assert len(train) == 80 and len(val) == 20 and len(dm.splits["test"][0]) == 30
    flat = lambda x: {bytes(img.numpy().tobytes()) for img in x}  # noqa: E731
    assert not flat(train) & flat(val)
    assert torch.equal(make_dm(cifar_dir).splits["val"][0], val)
    assert not torch.equal(make_dm(cifar_dir, split_seed=1).splits["val"][0], val)


def test_subset_takes_a_fraction_of_the_train_images(cifar_dir: Path) -> None:
    dm = make_dm(cifar_dir, subset=0.25)
    assert len(dm.splits["train"][1]) == 20
    assert len(dm.splits["val"][1]) == 20


def test_normalization_stats_are_measured_on_the_train_split(cifar_dir: Path) -> None:
    dm = make_dm(cifar_dir, augment="none")
    images, _ = read_cifar10(cifar_dir / "cifar-10-batches-py", train=True)
    pixels = images.numpy().astype(np.float64) / 255
    assert np.allclose(dm.mean, pixels.mean(axis=(0, 2, 3)))
    assert np.allclose(dm.std, pixels.std(axis=(0, 2, 3), ddof=1))
    batch = torch.cat([x for x, _ in dm.train_dataloader()] + [x for x, _ in dm.val_dataloader()])
    assert batch.mean(dim=(0, 2, 3)).abs().max() < 1e-4


def test_grayscale_and_resize_change_the_inputs_and_the_shape_facts(cifar_dir: Path) -> None:
    dm = make_dm(cifar_dir, grayscale=True, image_size=40)
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (8, 1, 40, 40) and y.dtype == torch.int64
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, 40)
    # The pixels: PIL's ITU-R 601 luma of the same RGB images, bilinearly resized, then standardized with the
    # grayscale train split's statistics.
    colour = make_dm(cifar_dir).splits  # the same seeded split, in colour
    expected = np.stack([pil_gray(image, 40) for image in colour["val"][0][:8]]).astype(np.float64)
    (mean,), (std,) = dm.mean, dm.std
    assert (x[:, 0] * std + mean).mul(255).numpy() == pytest.approx(expected, abs=1.5)  # PIL rounds twice
    train = np.stack([pil_gray(image) for image in colour["train"][0]]).astype(np.float64) / 255
    assert (mean, std) == pytest.approx((train.mean(), train.std(ddof=1)), abs=2e-3)  # PIL rounds the luma


def pil_gray(image: torch.Tensor, size: int | None = None) -> np.ndarray:
    """An RGB uint8 (3, H, W) image as PIL converts it to luma ("L"), bilinearly resized to ``size`` if given."""
    gray = Image.fromarray(image.permute(1, 2, 0).numpy()).convert("L")
    return np.asarray(gray.resize((size, size), Image.Resampling.BILINEAR) if size else gray)


def test_augmentation_is_random_in_train_and_absent_in_evaluation(cifar_dir: Path) -> None:
    dm = make_dm(cifar_dir)
    assert dm.augment == "crop_flip"
    train = dm.train_dataloader().dataset
    first = torch.stack([train[(i, 1000 + i)][0] for i in range(16)])
    again = torch.stack([train[(i, 1000 + i)][0] for i in range(16)])
    other = torch.stack([train[(i, 5000 + 7 * i)][0] for i in range(16)])
    assert torch.equal(first, again) and not torch.equal(first, other)  # the seed decides, nothing else
    plain = torch.stack([dm.transform()(image) for image in dm.splits["train"][0][:16]])
    assert (first != plain).flatten(1).any(1).sum() >= 12  # most seeds crop or flip (1 in 162 does neither)
    # Evaluation feeds the un-augmented transform of each image, in order.
    images, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(images, torch.stack([dm.transform()(image) for image in dm.splits["val"][0][:8]]))


def test_fashion_mnist_defaults(fmnist_dir: Path) -> None:
    dm = make_dm(fmnist_dir, dataset="fashion_mnist")
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and dm.augment == "none"
    assert dm.classes[0] == "T-shirt/top" and len(dm.classes) == 10


def test_missing_data_offline_raises_one_clear_error(tmp_path: Path) -> None:
    # conftest's autouse fixture makes every download attempt fail, as on an offline machine.
    dm = ImageDataModule(data_dir=str(tmp_path / "nowhere"), download=True)
    with pytest.raises(DatasetNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "--data.data_dir" in message and "download failed" in message


def test_partial_data_folder_names_the_missing_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing: data_batch_3\)"):
        ImageDataModule(data_dir=str(tmp_path), download=False).prepare_data()


def test_given_mean_and_std_replace_the_measured_ones(cifar_dir: Path) -> None:
    dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, mean=[0.5, 0.25, 0.0], std=[0.5, 0.5, 0.25])
    dm.setup("fit")
    images, _ = dm.splits["val"]
    first = dm.transform()(images[0])
    expected = (images[0].float() / 255 - torch.tensor([0.5, 0.25, 0.0])[:, None, None]) / torch.tensor(
        [0.5, 0.5, 0.25]
    )[:, None, None]
    assert torch.allclose(first, expected, atol=1e-6)
    with pytest.raises(ValueError, match="mean and std together"):
        ImageDataModule(data_dir=str(cifar_dir), mean=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="3 value"):
        ImageDataModule(data_dir=str(cifar_dir), mean=[0.5], std=[0.5])
