"""The fast data path: batched crop/flip with the per-image path's semantics, same eval inputs, exact resume."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms import v2

from cnnbench.data import ImageDataModule
from cnnbench.data.fast import PAD, IndexBatch, crop_flip
from cnnbench.data.sampling import ResumableSampler
from tests.helpers.runs import assert_same_tensors, fit_straight_and_resumed


def seed_for(dy: int, dx: int, flip: bool) -> int:
    side = 2 * PAD + 1
    return dy + side * dx + side * side * int(flip)


def test_crop_flip_cuts_the_padded_image_at_the_seeded_offset() -> None:
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    seeds = torch.tensor([seed_for(4, 4, False), seed_for(0, 8, True), seed_for(8, 1, False)])
    out = crop_flip(images, seeds, crop=True, flip=True)
    padded = v2.functional.pad(images, [PAD])
    assert torch.equal(out[0], images[0])  # offset (4, 4): the image itself
    assert torch.equal(out[1], padded[1, :, 0:8, 8:16].flip(2))
    assert torch.equal(out[2], padded[2, :, 8:16, 1:9])


def test_offsets_and_flips_are_uniform_over_the_samplers_seeds() -> None:
    """Each of the (2 * PAD + 1)^2 crop offsets and both flips come equally often from the seeds the sampler hands
    out, as read back from the images ``crop_flip`` makes (each matched against every crop of the padded image)."""
    sampler = ResumableSampler(range(20000), seed=0)
    sampler.set_epoch(1)
    seeds = torch.tensor([seed for _, seed in sampler])
    image = torch.randperm(64, generator=torch.Generator().manual_seed(0)).add(1).view(1, 8, 8)  # distinct pixels
    padded, side = v2.functional.pad(image, [PAD]), 2 * PAD + 1
    candidates = {
        padded[:, dy : dy + 8, dx : dx + 8].flip(2 if flip else ()).numpy().tobytes(): (dy, dx, flip)
        for dy in range(side)
        for dx in range(side)
        for flip in (False, True)
    }
    assert len(candidates) == side * side * 2
    out = crop_flip(image.expand(len(seeds), 1, 8, 8), seeds, crop=True, flip=True)
    drawn = torch.tensor([candidates[crop.numpy().tobytes()] for crop in out])
    for column, k in ((0, side), (1, side), (2, 2)):
        counts = torch.bincount(drawn[:, column], minlength=k).float() / len(seeds)
        assert torch.allclose(counts, torch.full((k,), 1 / k), atol=0.02), counts
    assert len({tuple(row) for row in drawn.tolist()}) == len(candidates)  # every combination occurs


def test_fast_evaluation_inputs_equal_the_per_image_path(cifar_dir: Path) -> None:
    batches = {}
    for fast in (False, True):
        dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=8, num_workers=0, fast=fast)
        dm.setup("fit")
        batch = next(iter(dm.val_dataloader()))
        batches[fast] = dm.on_after_batch_transfer(batch, 0)
    assert isinstance(next(iter(dm.val_dataloader())), IndexBatch)
    assert torch.equal(batches[True][1], batches[False][1])
    assert torch.allclose(batches[True][0], batches[False][0], atol=1e-5)


def test_fast_resize_matches_torchvision_up_to_rounding(fmnist_dir: Path) -> None:
    inputs = []
    for fast in (False, True):
        dm = ImageDataModule(dataset="fashion_mnist", data_dir=str(fmnist_dir), val_size=20, batch_size=4,
                             num_workers=0, image_size=64, fast=fast)  # fmt: skip
        dm.setup("fit")
        inputs.append(dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)[0])
    assert inputs[0].shape == inputs[1].shape == (4, 1, 64, 64)
    assert (inputs[0] - inputs[1]).abs().max() * dm.std[0] <= 1 / 255 + 1e-6  # torchvision rounds to uint8


def test_fast_path_resumes_mid_epoch_to_the_same_weights(cifar_dir: Path, tmp_path: Path) -> None:
    common = (
        "--data.fast=true",
        "--data.augment=crop_flip",
        "--model.lr_schedule=constant",
        "--model.warmup_epochs=0",
        "--trainer.deterministic=true",
        "--checkpoint.last_every_n_steps=1",
    )
    straight, resumed = fit_straight_and_resumed(
        cifar_dir, tmp_path, common, stop="--trainer.max_steps=3", end=["--trainer.max_steps=8"]
    )
    assert resumed.trainer.global_step == 8
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())


def test_fast_and_per_image_paths_give_the_same_training_batches(cifar_dir: Path) -> None:
    batches = {}
    for fast in (False, True):
        dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, num_workers=0, fast=fast)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(2)
        batches[fast] = [dm.on_after_batch_transfer(batch, 0) for batch in loader]
    assert len(batches[True]) == 5
    for (x_fast, y_fast), (x_slow, y_slow) in zip(batches[True], batches[False], strict=True):
        assert torch.equal(y_fast, y_slow) and torch.allclose(x_fast, x_slow, atol=1e-5)


def test_reflect_padding_crops_the_mirrored_border() -> None:
    """Each seeded offset cuts the image padded by ``F.pad``'s reflect mode, for a padding of 2 as in airbench."""
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    side = 2 * 2 + 1
    offsets = [(0, 0), (4, 4), (2, 2), (0, 3), (4, 1)]
    seeds = torch.tensor([dy + side * dx + side * side * (i % 2) for i, (dy, dx) in enumerate(offsets)])
    out = crop_flip(images, seeds, crop=True, flip=True, padding=2, padding_mode="reflect")
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="reflect").to(torch.uint8)
    for i, (dy, dx) in enumerate(offsets):
        expected = padded[i, :, dy : dy + 8, dx : dx + 8]
        assert torch.equal(out[i], expected.flip(2) if i % 2 else expected), i
    zeros = crop_flip(images, seeds, crop=True, flip=False, padding=2)
    assert torch.equal(zeros[0, :, :2], torch.zeros(3, 2, 8, dtype=torch.uint8))  # offset (0, 0): two zero rows


def flips_by_epoch(sampler: ResumableSampler, images: torch.Tensor, epochs: int) -> torch.Tensor:
    """(epochs, N) booleans: whether ``crop_flip`` mirrored each image in each epoch, read back from its pixels."""
    flipped = torch.zeros(epochs, len(images), dtype=torch.bool)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        indices, seeds = (torch.tensor(column) for column in zip(*sampler, strict=True))
        out = crop_flip(images[indices], seeds, crop=False, flip=True, padding=2)
        flipped[epoch, indices] = (out == images[indices].flip(-1)).flatten(1).all(1)
    return flipped


def test_alternating_flip_mirrors_each_image_every_other_epoch() -> None:
    from functools import partial

    from cnnbench.data.fast import alternate_flips

    n = 2000
    images = torch.arange(n * 4, dtype=torch.int64).view(n, 1, 1, 4)  # no image is its own mirror
    alternating = partial(alternate_flips, padding=2, dataset_size=n)
    sampler = ResumableSampler(range(n), seed=3, seed_map=lambda i, s, e, seed: alternating(i, s, e, seed))
    flipped = flips_by_epoch(sampler, images, epochs=4)
    assert torch.equal(flipped[1], ~flipped[0]) and torch.equal(flipped[2], flipped[0])
    assert torch.equal(flipped[3], ~flipped[0])
    assert abs(flipped[0].float().mean() - 0.5) < 0.04  # a random half in even epochs
    # Another run seed, another half; independent flips (no map) repeat a side in consecutive epochs.
    other = flips_by_epoch(ResumableSampler(range(n), seed=4, seed_map=alternating), images, epochs=1)
    assert abs((other[0] == flipped[0]).float().mean() - 0.5) < 0.05
    independent = flips_by_epoch(ResumableSampler(range(n), seed=3), images, epochs=2)
    assert abs((independent[1] == independent[0]).float().mean() - 0.5) < 0.05


def test_alternating_flip_is_the_same_on_both_paths_and_under_ddp_sharding(cifar_dir: Path) -> None:
    batches = {}
    options = {"alternating_flip": True, "crop_padding": 2, "padding_mode": "reflect", "augment": "crop_flip"}
    for fast in (False, True):
        dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, num_workers=0, fast=fast, **options)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)
        batches[fast] = [dm.on_after_batch_transfer(batch, 0) for batch in loader]
    for (x_fast, y_fast), (x_slow, y_slow) in zip(batches[True], batches[False], strict=True):
        assert torch.equal(y_fast, y_slow) and torch.allclose(x_fast, x_slow, atol=1e-5)
    # Two ranks' shares hold the seeds one process gives the same images (the coins are per image, not per rank).
    dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, num_workers=0, **options)
    dm.setup("fit")
    one = ResumableSampler(range(80), seed=5, seed_map=dm._alternate_flips)
    ranks = [ResumableSampler(range(80), seed=5, num_replicas=2, rank=r, seed_map=dm._alternate_flips) for r in (0, 1)]
    for sampler in (one, *ranks):
        sampler.set_epoch(1)
    place = (2 * 2 + 1) ** 2
    flip_of = {index: (seed // place) % 2 for sampler in ranks for index, seed in sampler}
    assert flip_of == {index: (seed // place) % 2 for index, seed in one}


def test_alternating_flip_resumes_mid_epoch_to_the_same_weights(cifar_dir: Path, tmp_path: Path) -> None:
    """A kill-and-resume in the middle of an odd epoch continues the alternating flips as a straight run has them."""
    common = (
        "--data.augment=crop_flip",
        "--data.alternating_flip=true",
        "--data.crop_padding=2",
        "--data.padding_mode=reflect",
        "--model.warmup_epochs=0",
        "--trainer.deterministic=true",
        "--checkpoint.last_every_n_steps=1",
    )
    straight, resumed = fit_straight_and_resumed(
        cifar_dir, tmp_path, common, stop="--trainer.max_steps=7", end=["--trainer.max_steps=13"]
    )
    assert resumed.trainer.global_step == 13  # 5 steps per epoch: stopped and resumed in epoch 1, ended in epoch 2
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())
