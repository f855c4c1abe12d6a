"""A data module of a user's own, as ``--data path.to.Class`` passes it: only the shape facts cnnbench links."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset


class NoiseDataModule(LightningDataModule):
    """Random 1x16x16 images whose label is the brightest quadrant (4 classes)."""

    num_classes, in_channels, image_size = 4, 1, 16

    def __init__(self, num_images: int = 64, batch_size: int = 16) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(num_images, 1, 16, 16, generator=generator)
        quadrants = self.images.unfold(2, 8, 8).unfold(3, 8, 8).mean(dim=(-1, -2)).flatten(1)
        self.labels = quadrants.argmax(dim=1)
        self.batch_size = batch_size

    def _loader(self, shuffle: bool = False) -> DataLoader:
        return DataLoader(TensorDataset(self.images, self.labels), batch_size=self.batch_size, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()
