"""Half precision (issue 27, items 6 and 10): metric states stay float32 under ``module.to(dtype)``, EMA trains under
bf16-true, and MixUp/CutMix soft targets stay float32 under bf16 autocast."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import cnnbench.classifier as classifier
from cnnbench.data.mixing import MixDraw, apply_mix
from cnnbench.models import FastNet, SimpleCNN
from tests.helpers.runs import CnnbenchCLI, base_args, column, read_metrics


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_metric_states_stay_float32_when_the_model_is_cast(dtype: torch.dtype) -> None:
    model = FastNet().to(dtype)
    assert model.backbone[0][0].weight.dtype == dtype  # the network is cast, its metrics are not
    for metric in (model.train_loss, model.val_loss, model.test_loss):
        assert {metric.total.dtype, metric.count.dtype} == {torch.float32}
    assert model.val_acc_best.max_value.dtype == torch.float32
    # A CIFAR-sized epoch: 400 batches of 128 images whose mean loss is 2.25 (exact in both; in the network's dtype).
    for _ in range(400):
        model.train_loss.update(torch.tensor(2.25, dtype=dtype), 128)
    assert model.train_loss.count.item() == 400 * 128  # bf16 would stop at 32768
    assert model.train_loss.compute().item() == 2.25  # fp16's total would overflow to inf
    model.val_acc_best.update(torch.tensor(0.8125, dtype=dtype))
    assert model.val_acc_best.compute().dtype == torch.float32


def test_bf16_true_trains_with_ema(cifar_dir: Path, tmp_path: Path) -> None:
    args = base_args(
        cifar_dir, tmp_path, "--trainer.precision=bf16-true", "--model.ema_decay=0.9", "--trainer.max_epochs=2"
    )
    cli = CnnbenchCLI(args=["fit", *args])
    assert cli.trainer.global_step == 10  # two epochs of 5 steps: past step 2, where the fp32 average crashed
    assert {p.dtype for p in cli.model.backbone.parameters()} == {torch.bfloat16}
    saved = torch.load(cli.run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    weight = "backbone.0.weight"
    assert averaged[weight].dtype == torch.float32 and raw[weight].dtype == torch.bfloat16  # the average keeps fp32
    assert not torch.equal(averaged[weight], raw[weight].float())
    assert torch.isfinite(averaged[weight]).all()
    assert saved["averaging_state"]["n_averaged"].item() == 10
    rows = read_metrics(cli.run_dir)
    assert all(math.isfinite(v) for _, v in column(rows, "val/loss")) and len(column(rows, "val/loss")) == 2
    assert saved["state_dict"]["train_loss.count"].item() == 80  # the epoch's 80 images, counted in float32


class StandInTrainer:
    """What training_step needs of a trainer when no step is logged: nothing."""


class RecordingLoss(nn.Module):
    """The model's criterion, recording the targets it is given."""

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.criterion, self.targets, self.logits = criterion, [], []

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        self.logits.append(logits)
        self.targets.append(targets)
        return self.criterion(logits, targets)


@pytest.mark.parametrize("op", ["mixup", "cutmix"])
def test_soft_targets_stay_float32_under_bf16_autocast(op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifier, "should_update_logs", lambda trainer: False)  # not a logging step
    model = SimpleCNN()
    model.trainer = stand_in = StandInTrainer()  # noqa: F841 (the module holds a weak reference)
    model.criterion = recorder = RecordingLoss(model.criterion)
    lam = 0.3
    images = torch.randn(8, 3, 32, 32).bfloat16()  # a half-precision batch (bf16-true casts batches)
    labels = torch.arange(8) % 10
    mixed, targets = apply_mix(images, labels, 10, MixDraw(op, lam, (0, 0, 32, 32)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.training_step((mixed, labels, targets), 0)
    (seen,) = recorder.targets
    assert seen.dtype == torch.float32 and recorder.logits[0].dtype == torch.float32
    eps = torch.finfo(torch.float32).eps
    assert torch.allclose(seen.sum(dim=1), torch.ones(8), rtol=0, atol=2 * eps)
    # Each row holds lam and 1 - lam (bf16 would round 0.3 to 0.30078).
    assert seen[1, 1].item() == pytest.approx(lam, abs=2 * eps)
    assert seen[1, 0].item() == pytest.approx(1 - lam, abs=2 * eps)
