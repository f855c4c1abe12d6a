"""The data module's loaders: the dataset a split's loader serves (indices or per-image), and the resumable train
loader whose position checkpoints carry."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch import Trainer
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from cnnbench.data.datasets import Augment
from cnnbench.data.fast import IndexDataset, index_collate
from cnnbench.data.per_image import ImageTensorDataset
from cnnbench.data.sampling import EvalShardSampler, ResumableDataLoader, ResumableSampler, SeedMap


class SplitLoaders:
    """Makes each split's loader; keeps the train loader, and the position a checkpoint gave it before it existed."""

    def __init__(self) -> None:
        self.train: ResumableDataLoader | None = None
        self._pending_state: dict[str, int] | None = None

    def make(
        self,
        split: str,
        images: Tensor,
        labels: Tensor,
        train: bool,
        hp: AttributeDict,
        batch_size: int,
        num_workers: int,
        augment: Augment,
        transform: Callable[[], v2.Compose],
        trainer: Trainer | None,
        seed_map: SeedMap | None,
    ) -> DataLoader:
        """The loader of ``split`` (``train``: the resumable one, in the run's seeded order, sharded by rank)."""
        dataset: Dataset
        # A loader's own generator: making an iterator draws the workers' base seed from it, not from the global
        # torch RNG, whose stream then only training advances (a resume makes its iterators at other moments than
        # the uninterrupted run did, yet continues the same dropout masks). The augmentation ignores worker seeds.
        options: dict[str, Any] = {"batch_size": batch_size, "generator": torch.Generator()}
        if hp.fast:
            dataset = IndexDataset(len(labels))
            options["collate_fn"] = index_collate(split)
        else:
            crop, flip = train and augment == "crop_flip", train and augment != "none"
            dataset = ImageTensorDataset(images, labels, transform(), crop, flip, hp.crop_padding, hp.padding_mode)
            options.update(num_workers=num_workers, persistent_workers=num_workers > 0)
        if not train:
            if trainer is not None and trainer.world_size > 1:
                options["sampler"] = EvalShardSampler(dataset, trainer.world_size, trainer.global_rank)
            return DataLoader(dataset, **options)
        # The training order is a function of the run's seed and the epoch, sharded by rank, and resumable.
        sampler = ResumableSampler(
            dataset,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            seed_map=seed_map,
        )
        self.train = ResumableDataLoader(dataset, sampler=sampler, **options)
        if self._pending_state is not None:
            self.train.load_state_dict(self._pending_state)
            self._pending_state = None
        return self.train

    def load_train_state(self, state: dict[str, int] | None) -> None:
        """The train loader's position from a checkpoint: applied now, or when the train loader is made."""
        self._pending_state = state
        if self.train is not None and self._pending_state is not None:
            self.train.load_state_dict(self._pending_state)
            self._pending_state = None
