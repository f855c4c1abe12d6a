"""The dataset registry: one ``DatasetSpec`` per dataset, and every part of cnnbench reads its facts from there.

``--data.dataset``, the shapes the CLI links into the model, ``cnnbench models --dataset``, the missing-data
message and the download all come from the spec, so a new dataset is one ``register_dataset(DatasetSpec(...))``
call (see ``cifar.py`` and ``mnist.py`` beside this file).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.error import URLError

from torch import Tensor

from cnnbench.data.datasets.checksums import verify_files
from cnnbench.errors import CnnbenchError, DatasetNotFoundError

Split = tuple[Tensor, Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)
Augment = Literal["none", "flip", "crop_flip"]


class UnknownDatasetError(CnnbenchError, KeyError):
    """A dataset name that is not registered. A KeyError too, so ``DATASETS[name]`` behaves like a mapping."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class DatasetFormatError(CnnbenchError):
    """The files are there but hold something other than the dataset the spec describes."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything cnnbench knows about one dataset; the data module, CLI and model summary read only this.

    The shape facts (``classes``, ``channels``, ``image_size``) must hold without reading any file: the CLI
    links them into the model when it parses the command line.
    """

    key: str  # the registry name: --data.dataset, run folder names
    name: str  # the display name, in messages
    classes: tuple[str, ...]  # in label order
    channels: int
    image_size: int  # side of the square images as stored
    folder: str  # relative to --data.data_dir, as torchvision lays it out
    train_files: tuple[str, ...]  # in ``folder``; each may also be present gzipped (``<file>.gz``)
    test_files: tuple[str, ...]
    reader: Callable[[Sequence[Path]], Split]  # the files of one split -> its images and labels
    download: Callable[[Path], object]  # fetches the files into data_dir (needs internet); see torchvision_download
    default_augment: Augment = "none"  # what --data.augment null means for this dataset
    train_size: int = 0  # images in the official splits (estimates such as seconds per epoch)
    test_size: int = 0
    # Reads the class names the folder itself lists (e.g. CIFAR's meta file), or None if it lists none: a folder
    # whose names differ from ``classes`` holds another dataset or ordering, and is refused.
    stored_classes: Callable[[Path], Sequence[str] | None] | None = None
    # The official files' MD5s by file name (a ``.gz`` under its own name), checked when a file is first read;
    # a folder's own ``checksums.md5`` takes precedence (see ``checksums.py``).
    checksums: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default_augment not in get_args(Augment):
            raise ValueError(f"{self.key}: default_augment must be one of {get_args(Augment)}")
        if self.channels not in (1, 3) or len(self.classes) < 2 or self.image_size < 1:
            raise ValueError(f"{self.key}: needs 1 or 3 channels, at least 2 classes and a positive image_size")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def files(self) -> tuple[str, ...]:
        """The files that must exist in ``folder``."""
        return self.train_files + self.test_files

    def missing_files(self, data_dir: Path) -> list[str]:
        folder = data_dir / self.folder
        return [f for f in self.files if not (folder / f).exists() and not (folder / f"{f}.gz").exists()]

    def ensure_available(self, data_dir: Path, download: bool) -> None:
        """Download missing files if allowed; otherwise raise one clear error naming the folder and the files."""
        missing = self.missing_files(data_dir)
        if not missing:
            return
        reason = "downloading is off (--data.download false)"
        if download:
            try:
                self.download(data_dir)
            except (URLError, OSError, RuntimeError) as exc:
                reason = f"the download failed ({exc.__class__.__name__}: {exc})"
            missing = self.missing_files(data_dir)
            if not missing:
                return
        raise DatasetNotFoundError(
            f"{self.name} not found in {data_dir / self.folder} (missing: {', '.join(missing)}) and {reason}. "
            f"Point --data.data_dir at the folder that holds {self.folder}/, or run once with internet access."
        )

    def read(self, folder: Path, train: bool) -> Split:
        """One split from ``folder`` (the dataset's own folder), checked against the spec's shape facts.

        The checks catch a folder holding another dataset (other class names, more labels, other image sizes)
        here, with a message, rather than as a shape error or silently wrong metrics in the middle of a run.
        Every file read is first checked against its known MD5 (``checksums.py``).
        """
        split = self.train_files if train else self.test_files
        read = [folder / f if (folder / f).exists() else folder / f"{f}.gz" for f in split]
        others = [folder / f for f in self.checksums if f.removesuffix(".gz") not in self.files]  # e.g. CIFAR's meta
        verify_files([*read, *others], self.checksums)
        if self.stored_classes is not None:
            stored = self.stored_classes(folder)
            if stored is not None and tuple(stored) != self.classes:
                diff = next((i for i, (a, b) in enumerate(zip(stored, self.classes, strict=False)) if a != b), None)
                detail = (
                    f"{len(stored)} classes, expected {self.num_classes}"
                    if diff is None
                    else f"class {diff} is {stored[diff]!r}, expected {self.classes[diff]!r}"
                )
                raise DatasetFormatError(f"{folder} does not hold {self.name}: its class names differ ({detail})")
        images, labels = self.reader([folder / f for f in (self.train_files if train else self.test_files)])
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != expected or len(images) != len(labels):
            raise DatasetFormatError(
                f"{folder} does not hold {self.name}: {len(images)} images of shape {tuple(images.shape[1:])} and "
                f"{len(labels)} labels, expected images of shape {expected}, one label each"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise DatasetFormatError(
                f"{folder} does not hold {self.name}: labels run from {labels.min().item()} to {labels.max().item()}, "
                f"expected 0 to {self.num_classes - 1}"
            )
        return images, labels

    def load(self, data_dir: Path, train: bool) -> Split:
        """One split from ``data_dir`` (the folder that holds the dataset's ``folder``)."""
        return self.read(data_dir / self.folder, train)


class _Registry(Mapping[str, DatasetSpec]):
    """Dataset key -> spec; a key that is not registered raises UnknownDatasetError listing the keys that are."""

    def __init__(self) -> None:
        self._specs: dict[str, DatasetSpec] = {}

    def __getitem__(self, key: str) -> DatasetSpec:
        try:
            return self._specs[key]
        except KeyError:
            close = difflib.get_close_matches(str(key), self._specs, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownDatasetError(
                f"unknown dataset {key!r}{hint}; registered datasets: {', '.join(sorted(self._specs))}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


DATASETS = _Registry()
"""Every registered dataset by key (read-only: add one with ``register_dataset``)."""


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` under ``spec.key`` and return it; a key registered twice is an error, not a silent override."""
    if spec.key in DATASETS:
        raise ValueError(f"dataset {spec.key!r} is already registered")
    DATASETS._specs[spec.key] = spec
    return spec


def list_datasets() -> list[str]:
    """The registered dataset keys, sorted."""
    return sorted(DATASETS)


def get_dataset(key: str) -> DatasetSpec:
    """The spec registered as ``key``; an unknown key raises UnknownDatasetError (a CnnbenchError)."""
    return DATASETS[key]


def torchvision_download(dataset_class: Callable[..., object]) -> Callable[[Path], None]:
    """A spec's ``download`` for a torchvision dataset class whose splits are chosen with ``train=True/False``.

    Datasets whose class takes other arguments (``split=`` ...) give their spec a function of their own.
    """

    def download(data_dir: Path) -> None:
        for train in (True, False):
            dataset_class(str(data_dir), train=train, download=True)

    return download
