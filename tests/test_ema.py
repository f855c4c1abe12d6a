"""An exponential moving average of the weights (--model.ema_decay): validation, checkpoints, export, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from cnnbench.export import export_checkpoint, load_classifier
from tests.helpers.runs import STEPS_PER_EPOCH, CnnbenchCLI, assert_same_tensors, base_args, column, main, read_metrics

EMA = ("--model.ema_decay=0.8", "--trainer.deterministic=true")


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_validation_and_the_best_checkpoint_use_the_averaged_weights(cifar_dir: Path, tmp_path: Path) -> None:
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, *EMA, "--trainer.max_epochs=2")])
    (best,) = (cli.run_dir / "checkpoints").glob("best-*.ckpt")
    saved = checkpoint(best)
    averaged, raw = saved["state_dict"], saved["current_model_state"]
    assert not torch.equal(averaged["backbone.0.weight"], raw["backbone.0.weight"])
    # The metric states are the model's (the best accuracy so far), not a stale copy's.
    assert averaged["val_acc_best.max_value"] == raw["val_acc_best.max_value"] > 0

    # val/loss of the best epoch is the loss of the averaged weights on the validation split, not of the raw ones.
    data = cli.datamodule
    batches = [data.on_after_batch_transfer(batch, 0) for batch in data.val_dataloader()]
    images, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    model = cli.model

    def val_loss(weights: dict[str, torch.Tensor]) -> float:
        model.load_state_dict(weights)
        with torch.no_grad():
            return F.cross_entropy(model.eval()(images), labels).item()

    logged = dict(column(read_metrics(cli.run_dir), "val/loss"))[saved["global_step"] - 1]
    assert logged == pytest.approx(val_loss(averaged), abs=1e-6)
    assert logged != pytest.approx(val_loss(raw), abs=1e-6)


def test_export_writes_the_averaged_network(cifar_dir: Path, tmp_path: Path) -> None:
    cli = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path / "runs", *EMA, "--trainer.max_epochs=1")])
    last = cli.run_dir / "checkpoints" / "last.ckpt"
    (program_path,) = (p for p in export_checkpoint(last, tmp_path / "export", ("export",)) if p.suffix == ".pt2")
    exported = torch.export.load(program_path).module()
    model, saved = load_classifier(last)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.load_state_dict(saved["state_dict"])
        averaged_logits = model(images)
        model.load_state_dict(saved["current_model_state"])
        raw_logits = model(images)
        logits = exported(images)
    torch.testing.assert_close(logits, averaged_logits, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits, raw_logits, rtol=1e-3, atol=1e-3)


def test_mid_epoch_resume_continues_the_average_exactly(cifar_dir: Path, tmp_path: Path) -> None:
    """A run stopped mid-epoch and resumed saves the checkpoint a straight run saves: raw weights, averaged
    weights and the average's step count, tensor for tensor."""

    def fit(root: Path, *extra: str) -> CnnbenchCLI:
        args = base_args(cifar_dir, root, *EMA, "--data.augment=crop_flip", "--trainer.max_epochs=2", *extra)
        return CnnbenchCLI(args=["fit", *args])

    straight = fit(tmp_path / "straight")
    stopped = fit(tmp_path / "resumed", "--trainer.max_steps=7")
    assert checkpoint(stopped.run_dir / "checkpoints/last.ckpt")["global_step"] == 7
    resumed = fit(tmp_path / "resumed", "--ckpt_path=last")
    assert resumed.run_dir == stopped.run_dir and resumed.trainer.global_step == 2 * STEPS_PER_EPOCH
    expected = checkpoint(straight.run_dir / "checkpoints/last.ckpt")
    actual = checkpoint(resumed.run_dir / "checkpoints/last.ckpt")
    for key in ("state_dict", "current_model_state", "averaging_state"):
        assert_same_tensors(expected[key], actual[key])
    assert expected["averaging_state"]["n_averaged"].item() == 2 * STEPS_PER_EPOCH
    # After fit the model holds the average (what test and predict in the same process use).
    assert_same_tensors(
        {k: v for k, v in expected["state_dict"].items() if k.startswith("backbone.")},
        {k: v for k, v in resumed.model.state_dict().items() if k.startswith("backbone.")},
    )


@pytest.mark.parametrize("decay", ["1.0", "-0.5"])
def test_out_of_range_decay_fails_in_one_line(
    decay: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, tmp_path, f"--model.ema_decay={decay}")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"cnnbench: error: --model.ema_decay must be in [0, 1) (got {decay})" in err
    assert "Traceback" not in err
