"""The dataset registry: each registered dataset reads its real-format files, feeds the data module, the CLI and
every model, and a new spec is all a new dataset needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnbench.data import ImageDataModule, read_cifar10, read_cifar100, read_fashion_mnist, read_mnist
from cnnbench.data.datasets import (
    DATASETS,
    DatasetFormatError,
    DatasetSpec,
    UnknownDatasetError,
    list_datasets,
    read_idx_split,
    register_dataset,
)
from cnnbench.errors import CnnbenchError, DatasetNotFoundError
from cnnbench.models import create_model, list_models
from cnnbench.models.summary import input_shape
from tests.helpers.datasets import TINY, write_cifar100, write_fashion_mnist, write_idx, write_idx_dataset, write_mnist
from tests.helpers.model_params import EXPECTED_PARAMS
from tests.helpers.runs import CnnbenchCLI, base_args, main

KEYS = list_datasets()
READERS = {"cifar10": read_cifar10, "cifar100": read_cifar100, "fashion_mnist": read_fashion_mnist, "mnist": read_mnist}


def test_every_registered_dataset_has_a_tiny_writer_and_states_the_real_datasets_shapes() -> None:
    assert {"cifar10", "cifar100", "fashion_mnist", "mnist"} <= set(KEYS)
    assert set(KEYS) == set(TINY), "give each registered dataset a tiny writer in tests/helpers/datasets.py"
    for key in KEYS:
        spec, tiny = DATASETS[key], TINY[key]
        assert spec.key == key and len(set(spec.classes)) == len(spec.classes)
        assert (len(spec.classes), spec.channels, spec.image_size) == (tiny.num_classes, tiny.channels, tiny.image_size)
    assert DATASETS["mnist"].classes == tuple("0123456789")
    fine = DATASETS["cifar100"].classes  # the archive lists its fine labels alphabetically
    assert list(fine) == sorted(fine) and (fine[0], fine[3], fine[-1]) == ("apple", "bear", "worm")


def test_an_unknown_key_is_a_cnnbench_error_naming_the_registered_ones() -> None:
    with pytest.raises(UnknownDatasetError) as err:
        DATASETS["cifar-100"]
    assert isinstance(err.value, CnnbenchError) and isinstance(err.value, KeyError)
    assert "did you mean cifar100?" in str(err.value) and all(key in str(err.value) for key in KEYS)
    assert "cifar-100" not in DATASETS and DATASETS.get("cifar-100") is None
    with pytest.raises(UnknownDatasetError):
        ImageDataModule(dataset="svhn")


@pytest.mark.parametrize("key", KEYS)
def test_reader_returns_exactly_the_arrays_written(key: str, tmp_path: Path) -> None:
    written = TINY[key].write(tmp_path)
    spec, tiny = DATASETS[key], TINY[key]
    for split in ("train", "test"):
        images, labels = spec.load(tmp_path, train=split == "train")
        expected_images, expected_labels = written[split]
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (len(expected_labels), tiny.channels, tiny.image_size, tiny.image_size)
        assert np.array_equal(images.numpy(), expected_images)
        assert labels.tolist() == expected_labels.tolist()
        if key in READERS:  # the public read_<dataset>(folder, train) functions read the same
            named_images, named_labels = READERS[key](tmp_path / spec.folder, split == "train")
            assert torch.equal(named_images, images) and torch.equal(named_labels, labels)


@pytest.mark.parametrize("key", ["mnist", "fashion_mnist"])
def test_idx_datasets_read_the_gzipped_files_alone(key: str, tmp_path: Path) -> None:
    written = {"mnist": write_mnist, "fashion_mnist": write_fashion_mnist}[key](tmp_path, compress=True)
    folder = tmp_path / DATASETS[key].folder
    assert sorted(p.suffix for p in folder.iterdir() if p.name != "checksums.md5") == [".gz"] * 4
    images, labels = DATASETS[key].load(tmp_path, train=False)
    assert np.array_equal(images.numpy(), written["test"][0]) and labels.tolist() == written["test"][1].tolist()


def test_cifar100_meta_file_with_other_class_names_is_refused(tmp_path: Path) -> None:
    names = list(DATASETS["cifar100"].classes)
    names[3] = "teddy_bear"
    write_cifar100(tmp_path, class_names=names)
    with pytest.raises(DatasetFormatError, match="class 3 is 'teddy_bear', expected 'bear'"):
        DATASETS["cifar100"].load(tmp_path, train=True)
    (tmp_path / "cifar-100-python" / "meta").unlink()  # no meta file: the built-in names stand
    assert len(DATASETS["cifar100"].load(tmp_path, train=True)[1]) == 100


def test_files_that_do_not_match_the_spec_are_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    folder = tmp_path / "MNIST" / "raw"
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(30, 12))  # a label beyond the ten digits
    with pytest.raises(DatasetFormatError, match="labels run from 12 to 12, expected 0 to 9"):
        DATASETS["mnist"].load(tmp_path, train=False)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((100, 32, 32)))  # 32x32 images, not MNIST's 28x28
    with pytest.raises(DatasetFormatError, match=r"shape \(1, 32, 32\)"):
        DATASETS["mnist"].load(tmp_path, train=True)


@pytest.mark.parametrize("key", KEYS)
def test_data_module_takes_shapes_classes_and_augmentation_from_the_spec(key: str, tmp_path: Path) -> None:
    written = TINY[key].write(tmp_path)
    spec, tiny = DATASETS[key], TINY[key]
    dm = ImageDataModule(dataset=key, data_dir=str(tmp_path), val_size=20, batch_size=8, num_workers=0,
                         download=False, fast=False)  # fmt: skip
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (tiny.num_classes, tiny.channels, tiny.image_size)
    assert dm.classes == list(spec.classes) and dm.augment == spec.default_augment
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.splits["train"][1]) + len(dm.splits["val"][1]) == len(written["train"][1])
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, tiny.channels, tiny.image_size, tiny.image_size) and x.dtype == torch.float32
    assert y.shape == (8,) and y.min() >= 0 and y.max() < tiny.num_classes


@pytest.mark.parametrize("key", KEYS)
def test_missing_files_offline_name_the_folder_and_the_option(key: str, tmp_path: Path) -> None:
    # conftest's autouse fixture makes every download attempt fail, as on an offline machine: the spec's own
    # download function ran (a wrong call signature would raise TypeError instead) and failed on the network.
    spec = DATASETS[key]
    with pytest.raises(DatasetNotFoundError) as err:
        ImageDataModule(dataset=key, data_dir=str(tmp_path), download=True).prepare_data()
    message = str(err.value)
    assert f"{spec.name} not found in {tmp_path / spec.folder}" in message and "--data.data_dir" in message
    assert "download failed" in message and all(f in message for f in spec.files)
    assert "shared" not in message and "dev machines" not in message


def test_cli_links_cifar100s_100_classes_into_the_model(cifar100_dir: Path, tmp_path: Path) -> None:
    args = ["--data.dataset=cifar100", "--model=resnet18", f"--data.data_dir={cifar100_dir}",
            f"--trainer.default_root_dir={tmp_path}"]  # fmt: skip
    cli = CnnbenchCLI(args=args, run=False)
    last = [m for m in cli.model.modules() if isinstance(m, nn.Linear)][-1]
    assert last.out_features == 100 and cli.datamodule.num_classes == 100
    # Only the classifier grows: ResNet-18's 10-class count plus 90 more rows of 512 weights and a bias.
    assert sum(p.numel() for p in cli.model.parameters()) == EXPECTED_PARAMS["resnet18"][(3, 32)] + 90 * 513


#: Models built for a bigger input than the datasets' (registered with their image_size).
NATIVE_IMAGE_SIZE = {"alexnet": 224}


@pytest.mark.parametrize("name", list_models())
def test_every_model_gives_logits_on_cifar100_and_mnist_shapes(name: str) -> None:
    for key, num_classes, (channels, side) in (("cifar100", 100, (3, 32)), ("mnist", 10, (1, 28))):
        shape = input_shape(name, key)  # what `cnnbench models` and the configs use: the spec's shape
        assert shape == (channels, NATIVE_IMAGE_SIZE.get(name, side))
        model = create_model(name, num_classes=num_classes, in_channels=shape[0], image_size=shape[1]).eval()
        with torch.no_grad():
            logits = model(torch.rand(2, shape[0], shape[1], shape[1]))
        assert logits.shape == (2, num_classes) and torch.isfinite(logits).all()


def models_table(capsys: pytest.CaptureFixture, *args: str) -> dict[str, tuple[str, int]]:
    """``cnnbench models ARGS`` as {model: (input, params)}."""
    main(["models", *args])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()[2:]]
    return {cells[1].strip(): (cells[2].strip(), int(cells[3].strip().replace(",", ""))) for cells in rows}


def test_models_command_lists_every_model_at_mnists_shape(capsys: pytest.CaptureFixture) -> None:
    listed = models_table(capsys, "--dataset", "mnist")
    sides = {name: NATIVE_IMAGE_SIZE.get(name, 28) for name in list_models()}
    assert listed == {name: (f"1x{s}x{s}", EXPECTED_PARAMS[name][(1, s)]) for name, s in sides.items()}


def test_models_command_counts_the_datasets_classes(capsys: pytest.CaptureFixture) -> None:
    listed = models_table(capsys, "--dataset", "cifar100", "resnet18", "lenet5")
    # 90 more classifier rows than the 10-class counts: 512 weights + bias (ResNet-18), 84 + bias (LeNet-5).
    assert listed == {
        "resnet18": ("3x32x32", EXPECTED_PARAMS["resnet18"][(3, 32)] + 90 * 513),
        "lenet5": ("3x32x32", EXPECTED_PARAMS["lenet5"][(3, 32)] + 90 * 85),
    }


def test_unknown_dataset_is_one_line_naming_the_registered_ones(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, tmp_path / "runs"), "--data.dataset=cifar1000"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("cnnbench: error:")]
    assert "'cifar1000'" in line and all(key in line for key in KEYS)
    assert not (tmp_path / "runs").exists()  # refused before any run folder


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Datasets registered by the test are gone after it."""
    monkeypatch.setattr(DATASETS, "_specs", dict(DATASETS._specs))


def test_a_registered_spec_is_all_a_new_dataset_needs(scratch_registry: None, tmp_path: Path) -> None:
    # MNIST's format in a folder of its own, fetched by a download function that takes no train= argument.
    downloads = []

    def download(data_dir: Path) -> None:
        downloads.append(data_dir)
        write_idx_dataset(data_dir / "Digits" / "raw", seed=1, compress=False)

    spec = DatasetSpec(
        key="digits", name="Digits", classes=tuple("abcdefghij"), channels=1, image_size=28, folder="Digits/raw",
        train_files=DATASETS["mnist"].train_files, test_files=DATASETS["mnist"].test_files, reader=read_idx_split,
        download=download, default_augment="flip",
    )  # fmt: skip
    assert register_dataset(spec) is spec and "digits" in list_datasets()
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(spec)
    dm = ImageDataModule(dataset="digits", data_dir=str(tmp_path), val_size=20, batch_size=8, num_workers=0, fast=False)
    dm.prepare_data()
    dm.setup("fit")
    assert downloads == [tmp_path] and dm.augment == "flip" and dm.classes == list("abcdefghij")
    assert next(iter(dm.train_dataloader()))[0].shape == (8, 1, 28, 28)
    args = ["--data.dataset=digits", "--model=lenet5", f"--data.data_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}"]  # fmt: skip
    cli = CnnbenchCLI(args=args, run=False)
    assert (cli.model.hparams.num_classes, cli.model.hparams.in_channels) == (10, 1)
