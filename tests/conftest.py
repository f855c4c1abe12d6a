"""Fixtures shared by every test: tiny real-format datasets, no network, no W&B server."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError

import pytest

from tests.helpers.datasets import write_cifar10, write_cifar100, write_fashion_mnist, write_mnist
from tests.helpers.runs import CnnbenchCLI, base_args


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

    def refuse(*args: object, **kwargs: object) -> None:
        raise URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


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


@pytest.fixture
def fitted(cifar_dir: Path, tmp_path: Path) -> tuple[Path, Path, CnnbenchCLI]:
    """A 2-epoch fit; returns (data_dir, root, cli)."""
    root = tmp_path / "runs"
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2")])
    return cifar_dir, root, cli
