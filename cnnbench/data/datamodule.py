"""One LightningDataModule for every registered dataset: what differs between datasets is in its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from cnnbench.data.datasets import Augment, Split, get_dataset
from cnnbench.data.fast import PAD, DeviceBatches, IndexBatch, PaddingMode, alternate_flips
from cnnbench.data.files import read_predict_split
from cnnbench.data.loaders import SplitLoaders
from cnnbench.data.mixing import draw_mix
from cnnbench.data.options import check_options
from cnnbench.data.per_image import image_transform
from cnnbench.data.stats import channel_stats, to_grayscale
from cnnbench.errors import BadValueError, CnnbenchError
from cnnbench.ranges import NonNegativeFloatBelowOne, PositiveFloatUpToOne, check_ranges


class ImageDataModule(LightningDataModule):
    """A registered dataset, read from torchvision's on-disk layout.

    Args:
        dataset: Key of a registered dataset (``cnnbench.data.list_datasets()``; an unknown key is refused
            with the list).
        data_dir: Folder holding the dataset's own folder as torchvision lays it out (its spec's ``folder``;
            the message for missing files names it).
        batch_size: Batch size of every split (per device under DDP).
        num_workers: DataLoader worker processes.
        val_size: Images held out of the official train split for validation (seeded split). 0: none, train on
            the whole split; the run then keeps its last state as its best checkpoint, and ``test`` is the one
            evaluation.
        split_seed: Seed of the train/validation split (kept apart from the training seed).
        subset: Fraction of the remaining train images to train on (1.0 = all).
        augment: Training augmentation (``crop_flip``: random crop of the padded image + horizontal flip);
            ``None`` picks the dataset's default (its spec's ``default_augment``).
        crop_padding: Pixels of padding around the image before the random crop: translations of up to this many
            pixels each way.
        padding_mode: ``zeros`` (as torchvision's ``RandomCrop(padding=...)``) or ``reflect`` (mirrored borders).
        alternating_flip: Flip each image in every other epoch (a fixed random half of the images in even epochs,
            the other half in odd ones) instead of independently at random each time.
        grayscale: Convert images to one channel.
        image_size: Resize images to this side (e.g. 224 for the classic AlexNet); ``None`` keeps them.
        normalize: Standardize with the per-channel mean/std measured on the official train split.
        mean: Per-channel means to standardize with instead of the measured ones (e.g. a blog post's
            published values; scaled to [0, 1]). Needs ``std`` too.
        std: Per-channel standard deviations to go with ``mean``.
        download: Download missing files (needs internet).
        predict_files: Image files or folders for ``predict`` instead of the test split (any size and mode:
            converted as the training images were; unreadable files are reported by name and skipped).
        fast: The in-memory path (default): loaders yield indices, and whole batches are gathered, augmented
            and normalized as tensor ops on the training device, from the split copied there once (see
            ``cnnbench/data/fast.py``); ``num_workers`` is then unused. ``false``: the per-image Dataset and
            DataLoader path, with the same pixels (a starting point for custom per-image transforms).
        mixup_alpha: MixUp of training batches (torchvision's ``v2.MixUp`` math): each image blended with its
            neighbour in the batch, ``lam ~ Beta(alpha, alpha)``; 0 turns it off. The loss then takes soft targets.
        cutmix_alpha: CutMix of training batches (``v2.CutMix`` math): a box of the neighbour pasted in, the
            targets weighed by area; 0 turns it off. With both on, each mixed batch uses one of them, half and half.
        mix_prob: Probability that a training batch is mixed. The draws come from the sampler's seeds, so a
            resumed run mixes as the uninterrupted one. Needs the in-memory path (``fast``).
        brightness: Brightness jitter of training images: a per-image shift ``U(-brightness, brightness)`` of the
            normalized pixels (``cnnbench/data/jitter.py``; the 2025 CIFAR-10 speedrun: 0.14). 0 turns it off. Needs
            the in-memory path.
        contrast: Contrast jitter: the normalized pixels times a per-image ``U(1 - contrast, 1 + contrast)`` (0.13).
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        data_dir: str = "data",
        batch_size: PositiveInt = 128,
        num_workers: NonNegativeInt = 2,
        val_size: NonNegativeInt = 5000,
        split_seed: int = 0,
        subset: PositiveFloatUpToOne = 1.0,
        augment: Augment | None = None,
        crop_padding: NonNegativeInt = PAD,
        padding_mode: PaddingMode = "zeros",
        alternating_flip: bool = False,
        grayscale: bool = False,
        image_size: int | None = None,
        normalize: bool = True,
        mean: list[float] | None = None,
        std: list[PositiveFloat] | None = None,
        download: bool = True,
        predict_files: list[str] | None = None,
        fast: bool = True,
        mixup_alpha: NonNegativeFloat = 0.0,
        cutmix_alpha: NonNegativeFloat = 0.0,
        mix_prob: ClosedUnitInterval = 1.0,
        brightness: NonNegativeFloat = 0.0,
        contrast: NonNegativeFloatBelowOne = 0.0,
    ) -> None:
        super().__init__()
        spec = get_dataset(dataset)  # an unknown key fails here, before any file is touched
        # The annotations' ranges; checked here, before the CLI creates the run folder: a bad value leaves nothing.
        self.save_hyperparameters()
        check_ranges(type(self), ImageDataModule, self.hparams, "--data.")
        check_options(spec, self.hparams)
        self.spec = spec
        # Recorded as the side the model sees (the model's image_size), not as "keep the dataset's".
        self.save_hyperparameters({**self.hparams, "image_size": image_size or self.spec.image_size})
        self.dataset = dataset
        self.data_dir = Path(data_dir)
        # From the hparams: the arguments may be jsonargparse's number types (PositiveInt), the hparams are plain.
        self.batch_size = self.hparams.batch_size
        self.num_workers = self.hparams.num_workers
        self.augment: Augment = augment or self.spec.default_augment  # type: ignore[assignment]
        self.mean: list[float] = []
        self.std: list[float] = []
        self.splits: dict[str, Split] = {}
        self._loaders = SplitLoaders()  # the train loader and its position
        self.predict_names: list[str] = []  # the files predicted on, in order (predict_files)
        self._device_batches = DeviceBatches()  # fast path: the splits and normalization on the training device

    # Shape facts the CLI links to the model, known before any file is read.
    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)

    @property
    def in_channels(self) -> int:
        return 1 if self.hparams.grayscale else self.spec.channels

    @property
    def image_size(self) -> int:
        return self.hparams.image_size or self.spec.image_size

    @property
    def validates(self) -> bool:
        """Whether fit validates (``val_size`` > 0); without validation the last state stands for the best."""
        return self.hparams.val_size > 0

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    def prepare_data(self) -> None:
        if not self._predicting_files():
            self.spec.ensure_available(self.data_dir, self.hparams.download)

    def _predicting_files(self) -> bool:
        trainer = self.trainer
        return bool(self.hparams.predict_files) and (trainer is None or trainer.predicting)

    def setup(self, stage: str) -> None:
        if stage == "predict" and self.hparams.predict_files:
            # The images as the dataset's are (channels, native size); the checkpoint supplies the normalization.
            files, size = self.hparams.predict_files, self.spec.image_size
            self.splits["predict"], self.predict_names = read_predict_split(files, self.in_channels, size)
            return
        if self.splits:
            return
        self.spec.ensure_available(self.data_dir, download=False)
        train_images, train_labels = self._load(train=True)
        test_images, test_labels = self._load(train=False)
        if not self.hparams.normalize:
            self.mean, self.std = [0.0], [1.0]
        elif self.hparams.mean is not None:
            self.mean, self.std = list(self.hparams.mean), list(self.hparams.std)
        else:
            self.mean, self.std = channel_stats(train_images)

        n = len(train_labels)
        if self.hparams.val_size >= n:  # a folder smaller than the official split (a user's subset of it)
            raise BadValueError(f"--data.val_size must be from 0 to {n - 1} (the train split in {self.data_dir} "
                                f"holds {n} images), got {self.hparams.val_size}")  # fmt: skip
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.hparams.split_seed))
        val_idx, train_idx = order[: self.hparams.val_size], order[self.hparams.val_size :]
        train_idx = train_idx[: max(1, round(len(train_idx) * self.hparams.subset))]
        self.splits = {
            "train": (train_images[train_idx], train_labels[train_idx]),
            "val": (train_images[val_idx], train_labels[val_idx]),
            "test": (test_images, test_labels),
        }

    def _load(self, train: bool) -> Split:
        images, labels = self.spec.load(self.data_dir, train)
        if self.hparams.grayscale and images.shape[1] == 3:
            images = to_grayscale(images)
        return images, labels

    def training_images(self, n: int) -> Tensor:
        """The first ``n`` training images as the model sees them, unaugmented: float, normalized (for AirNet)."""
        images = self.splits["train"][0][:n].float() / 255
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in self.normalization())
        return (images - mean) / std

    def normalization(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std the inputs are standardized with (none before setup, or with normalize off)."""
        mean, std = self.mean or [0.0], self.std or [1.0]
        return mean * (self.in_channels // len(mean)), std * (self.in_channels // len(std))

    def transform(self) -> v2.Compose:
        """The deterministic part of the input pipeline: resize (if asked), scale to [0, 1], normalize."""
        resize = self.image_size if self.image_size != self.spec.image_size else None
        return image_transform(resize, *self.normalization())

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        images, labels = self.splits[split]
        seed_map = self._alternate_flips if self.hparams.alternating_flip else None
        return self._loaders.make(split, images, labels, train, self.hparams, self.batch_size, self.num_workers,
                                  self.augment, self.transform, self.trainer, seed_map)  # fmt: skip

    def _alternate_flips(self, indices: Tensor, seeds: Tensor, epoch: int, run_seed: int) -> Tensor:
        return alternate_flips(indices, seeds, epoch, run_seed, self.hparams.crop_padding, len(self.splits["train"][1]))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._loader("val") if self.validates else []  # no loader: Lightning skips validation

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        if "predict" not in self.splits:
            return self._loader("test")
        if not self.mean:
            raise CnnbenchError("predicting on image files needs a trained model's normalization: pass --ckpt_path")
        return self._loader("predict")

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # The MixUp/CutMix draw of a training batch, made on the host from its first seed (no device sync).
        hp = self.hparams
        if isinstance(batch, IndexBatch) and batch.split == "train" and (hp.mixup_alpha or hp.cutmix_alpha):
            mix = draw_mix(int(batch.seeds[0]), self.image_size, hp.mixup_alpha, hp.cutmix_alpha, hp.mix_prob)
            return batch._replace(mix=mix)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not isinstance(batch, IndexBatch):
            return batch
        hp, norm = self.hparams, self.normalization()
        return self._device_batches(batch, self.splits, norm, self.augment, hp, self.image_size, self.num_classes)

    def state_dict(self) -> dict[str, Any]:
        # Saved in every checkpoint: the normalization and classes, so predictions on new images can use the
        # training ones, and the train loader's position, so a resumed run continues its epoch exactly.
        state: dict[str, Any] = {"mean": self.mean, "std": self.std, "classes": self.classes}
        if self._loaders.train is not None:
            state["train_loader"] = self._loaders.train.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores a stateful loader itself only if it builds the loader after loading the checkpoint;
        # a model whose configure_optimizers reads trainer.estimated_stepping_batches (ours: the LR schedule)
        # makes it build the loader first and the state is dropped. The data module carries it instead.
        if "mean" in state_dict:  # the training normalization, for inputs that are not the training data
            self.mean, self.std = list(state_dict["mean"]), list(state_dict["std"])
        self._loaders.load_train_state(state_dict.get("train_loader"))
