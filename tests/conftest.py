"""Fixtures shared by every test: tiny real-format datasets, no network, no W&B server."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.datasets import write_cifar10, write_cifar100, write_fashion_mnist, write_mnist
from tests.helpers.isolation import isolate, refuse_network
from tests.helpers.runs import TrainedRun, train_once


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_cifar10(root)
    return root


@pytest.fixture
def fmnist_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_fashion_mnist(root)
    return root


@pytest.fixture
def cifar100_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_cifar100(root)
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_mnist(root)
    return root


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The matplotlib figures saved during the test, by file name, as they were drawn (their axes can be read)."""
    from matplotlib.figure import Figure

    saved: dict[str, Any] = {}
    save = Figure.savefig

    def keep(fig: Figure, path: Path, **kwargs: object) -> None:
        saved[Path(path).name] = fig
        save(fig, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the network: a download attempt fails at once, as on an offline machine."""

    monkeypatch.setattr(urllib.request, "urlopen", refuse_network)


@pytest.fixture(autouse=True)
def _no_wandb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never talk to a W&B server; a test that wants offline W&B sets WANDB_MODE itself.

    A W&B run left open would be reused by the next test's logger (Lightning reuses ``wandb.run``), so every
    test ends with none.
    """
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()


@pytest.fixture(scope="session")
def _trained_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedRun, Path]:
    """The one 2-epoch simple_cnn fit of the session, and a pristine copy of its data and runs folders."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
        run = train_once(tmp_path_factory.mktemp("trained"))
    pristine = tmp_path_factory.mktemp("trained-pristine")
    for folder in (run.data_dir, run.root):
        shutil.copytree(folder, pristine / folder.name)
    return run, pristine


@pytest.fixture
def fitted(_trained_once: tuple[TrainedRun, Path]) -> TrainedRun:
    """A finished 2-epoch simple_cnn run on the tiny CIFAR-10 data, for this test to change at will; its runs root
    holds that one run folder.

    The run is trained once per session; each test gets it as it was trained, at the paths it was trained at (a
    checkpoint records its folder: Lightning restores less of a run resumed from another place than users do).
    """
    run, pristine = _trained_once
    for folder in (run.data_dir, run.root):
        shutil.rmtree(folder)
        shutil.copytree(pristine / folder.name, folder)
    return run
