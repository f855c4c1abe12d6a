"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): 32x32 colour images, 50,000 train and 10,000 test, as python pickles."""

from __future__ import annotations

from pathlib import Path

import torchvision

from cnnbench.data.datasets.formats import pickle_batches, pickled_names
from cnnbench.data.datasets.registry import DatasetSpec, Split, register_dataset, torchvision_download

# torchvision's published MD5s of the extracted files (CIFAR10.train_list, test_list, meta; likewise CIFAR100),
# written out so that a change in torchvision cannot loosen the check; tests/test_checksums.py compares them.
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR100_MD5 = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}

CIFAR10 = register_dataset(
    DatasetSpec(
        key="cifar10",
        name="CIFAR-10",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        channels=3,
        image_size=32,
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        reader=pickle_batches("labels"),
        download=torchvision_download(torchvision.datasets.CIFAR10),
        default_augment="crop_flip",
        train_size=50_000,
        test_size=10_000,
        stored_classes=pickled_names("batches.meta", "label_names"),
        checksums=CIFAR10_MD5,
    )
)

# The 100 fine labels in label order (alphabetical), as the archive's ``meta`` file lists them. Written out
# because the CLI needs the class count before any file is read; a ``meta`` file that disagrees is refused.
# fmt: off
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm"
)
# fmt: on

CIFAR100 = register_dataset(
    DatasetSpec(
        key="cifar100",
        name="CIFAR-100",
        classes=CIFAR100_CLASSES,
        channels=3,
        image_size=32,
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        reader=pickle_batches("fine_labels"),  # the 100 fine classes, not the 20 superclasses
        download=torchvision_download(torchvision.datasets.CIFAR100),
        default_augment="crop_flip",
        train_size=50_000,
        test_size=10_000,
        stored_classes=pickled_names("meta", "fine_label_names"),
        checksums=CIFAR100_MD5,
    )
)


def read_cifar10(folder: Path, train: bool) -> Split:
    """A CIFAR-10 split from ``folder`` (``<data_dir>/cifar-10-batches-py``)."""
    return CIFAR10.read(folder, train)


def read_cifar100(folder: Path, train: bool) -> Split:
    """A CIFAR-100 split, fine labels, from ``folder`` (``<data_dir>/cifar-100-python``)."""
    return CIFAR100.read(folder, train)
