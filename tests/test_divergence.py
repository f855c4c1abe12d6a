"""A diverging fit (NaN/inf loss) stops with one line naming the step and the last good checkpoint; no NaN weights
are ever saved as best or last."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from tests.helpers.runs import base_args, main


def diverge(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run a fit that must diverge: exit status 2, no traceback; its one error line."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    return line


def checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("*.ckpt"))


def assert_finite_weights(path: Path) -> None:
    state = torch.load(path, weights_only=True)["state_dict"]
    weights = {k: v for k, v in state.items() if k.startswith("backbone.") and v.is_floating_point()}
    assert weights and all(v.isfinite().all() for v in weights.values()), path


@pytest.mark.parametrize(
    ("options", "detected"),
    [
        # The loss is read back on the steps the loggers write: every step here.
        (["--trainer.log_every_n_steps=1"], "the training loss became inf at step 2;"),
        # No logging step before the epoch ends: the weights are checked before validation (and the best checkpoint).
        (["--trainer.log_every_n_steps=50"], "the weights became nan or inf (the training diverged) by step 4;"),
        # A periodic last.ckpt due after step 3, when the weights are NaN: that save is refused.
        (
            ["--trainer.log_every_n_steps=50", "--checkpoint.last_every_n_steps=4"],
            "the weights became nan or inf (the training diverged) by step 3;",
        ),
    ],
)
def test_huge_learning_rate_stops_the_run_before_saving_nan_weights(
    options: list[str], detected: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    line = diverge(base_args(cifar_dir, root, "--trainer.max_epochs=3", "--model.lr=1e9", *options), capsys)
    assert detected in line and "no checkpoint had been saved yet" in line and "Lower --model.lr (it was 1e+09)" in line
    assert checkpoints(root) == []


class BlowUpLR(Callback):
    """From the second epoch on, sets the learning rate to 1e9: a run that trains well, then diverges.

    Set before every batch: the LR schedule sets its own value after each step."""

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int) -> None:
        if trainer.current_epoch >= 1:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 1e9


def test_divergence_after_an_epoch_names_that_epochs_last_checkpoint(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    blow_up = '--trainer.callbacks=[{"class_path": "tests.test_divergence.BlowUpLR"}]'  # as a user's callback
    line = diverge(
        base_args(cifar_dir, root, "--trainer.max_epochs=3", "--trainer.log_every_n_steps=50", blow_up), capsys
    )
    (last,) = root.glob("*/*/checkpoints/last.ckpt")
    assert f"the last good checkpoint is {last}." in line and "diverged) by step" in line
    assert torch.load(last, weights_only=True)["epoch"] == 0  # the first, finished epoch's state
    found = checkpoints(root)
    assert last in found and len(found) == 2  # last.ckpt and the first epoch's best; nothing from epoch 2
    for path in found:
        assert_finite_weights(path)
