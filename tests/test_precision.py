"""What a GPU run depends on, checked on the CPU: half-precision weights, exact loss means, timing without syncs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

import cnnbench.callbacks.throughput as throughput
from cnnbench.data.fast import to_model_input
from cnnbench.models import SimpleCNN
from tests.helpers.runs import STEPS_PER_EPOCH, CnnbenchCLI, base_args, column, read_metrics


def test_bf16_true_trains_with_finite_losses(cifar_dir: Path, tmp_path: Path) -> None:
    # The model summary runs the float32 example_input_array through the bf16 model as well.
    args = base_args(
        cifar_dir, tmp_path, "--trainer.precision=bf16-true", "--trainer.max_epochs=1",
        "--trainer.enable_model_summary=true",
    )  # fmt: skip
    cli = CnnbenchCLI(args=["fit", *args])
    assert {p.dtype for p in cli.model.parameters()} == {torch.bfloat16}
    assert cli.trainer.global_step == STEPS_PER_EPOCH
    rows = read_metrics(cli.run_dir)
    losses = [v for name in ("train/loss_step", "train/loss", "val/loss") for _, v in column(rows, name)]
    assert len(losses) == STEPS_PER_EPOCH + 2 and all(math.isfinite(v) for v in losses)


def test_val_loss_is_the_mean_over_images_not_batches(cifar_dir: Path, tmp_path: Path) -> None:
    # 20 validation images in batches of 16: the last batch holds 4.
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--trainer.max_epochs=1")])
    (logged,) = [v for _, v in column(read_metrics(cli.run_dir), "val/loss")]

    data, model = cli.datamodule, cli.model.eval()
    images, labels = data.splits["val"]
    mean, std = (torch.tensor(v) for v in data.normalization())
    with torch.no_grad():
        logits = model(to_model_input(images, mean, std, None))
    per_image = F.cross_entropy(logits, labels, reduction="sum").item() / len(labels)
    batch_means = [F.cross_entropy(logits[i : i + 16], labels[i : i + 16]).item() for i in (0, 16)]
    assert len(labels) == 20
    assert logged == pytest.approx(per_image, rel=1e-5)
    assert abs(sum(batch_means) / 2 - per_image) > 1e-3  # what a mean of batch means would have logged


def test_the_running_train_accuracy_equals_torchmetrics() -> None:
    """The train accuracy counts correct images (a small last batch weighs what it holds), as torchmetrics' micro
    accuracy does."""
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(n, 10, generator=generator), torch.randint(0, 10, (n,), generator=generator))
               for n in (16, 16, 5)]  # fmt: skip
    reference = MulticlassAccuracy(num_classes=10, average="micro")
    model = SimpleCNN()
    for logits, labels in batches:
        reference.update(logits, labels)
        model.train_acc.update(logits, labels)
    assert model.train_acc.count.item() == 37
    assert model.train_acc.compute().item() == pytest.approx(reference.compute().item())


def test_throughput_waits_for_the_device_at_epoch_boundaries_only(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU the clock is read after a device sync at each epoch's start, last batch and end, never per step."""
    events: list[str] = []
    clock = iter(range(1, 10_000))

    class Clock:
        @staticmethod
        def perf_counter() -> float:
            events.append("clock")
            return float(next(clock))

    def record_sync(device: Any = None) -> None:
        assert torch.device(device) == torch.device("cuda", 0)
        events.append("sync")

    real_synchronize = throughput.synchronize
    # The run is on the CPU; the callback is told it runs on cuda:0, whose synchronize is recorded.
    monkeypatch.setattr(throughput, "synchronize", lambda device: real_synchronize(torch.device("cuda", 0)))
    monkeypatch.setattr(torch.cuda, "synchronize", record_sync)
    monkeypatch.setattr(throughput, "time", Clock)
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--trainer.max_epochs=2")])
    assert cli.trainer.global_step == 2 * STEPS_PER_EPOCH
    assert events == ["sync", "clock"] * 3 * 2  # 2 epochs x (start, last batch, end), each clock read after a sync
    rows = read_metrics(cli.run_dir)
    # The fake clock ticks once per read: 1 tick from start to last batch, 2 to the epoch end.
    assert [v for _, v in column(rows, "train/epoch_s")] == [2.0, 2.0]
    assert [v for _, v in column(rows, "train/img_s")] == [80.0, 80.0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [([], ["high"]), (["--trainer.deterministic=true"], ["highest"]), (["--trainer.precision=bf16-mixed"], [])],
)
def test_fp32_runs_on_a_gpu_choose_their_matmul_precision(
    cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], expected: list[str]
) -> None:
    """TF32 for fp32 unless deterministic (then full fp32); mixed precision leaves the setting alone."""
    chosen: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "set_float32_matmul_precision", chosen.append)
    args = [*base_args(cifar_dir, tmp_path), *extra]
    CnnbenchCLI(args=args, run=False)
    assert chosen == expected
