"""The per-image path (``--data.fast false``): a Dataset of one image at a time, for DataLoader workers."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from cnnbench.data.fast import PAD, PaddingMode, crop_flip


class ImageTensorDataset(Dataset):
    """A split held as one uint8 tensor; ``transform`` maps one uint8 CHW image to the model's input.

    An item is an index, or ``(index, seed)`` from a ResumableSampler: the image is then randomly cropped
    and/or flipped as the seed says (the fast path's ``crop_flip``, so both paths give the same pixels).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        transform: v2.Transform,
        crop: bool = False,
        flip: bool = False,
        padding: int = PAD,
        padding_mode: PaddingMode = "zeros",
    ) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self.crop, self.flip, self.padding, self.padding_mode = crop, flip, padding, padding_mode

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, -1)
        image = self.images[index]
        if seed >= 0 and (self.crop or self.flip):
            seeds = torch.tensor([seed])
            image = crop_flip(image[None], seeds, self.crop, self.flip, self.padding, self.padding_mode)[0]
        return self.transform(image), self.labels[index]


def image_transform(resize: int | None, mean: list[float], std: list[float]) -> v2.Compose:
    """The deterministic part of the input pipeline: resize to ``resize`` (if given), scale to [0, 1], normalize."""
    steps: list[v2.Transform] = []
    if resize is not None:
        steps.append(v2.Resize(resize, antialias=True))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    steps.append(v2.Normalize(mean, std))
    return v2.Compose(steps)
