"""MixUp and CutMix of training batches (--data.mixup_alpha, --data.cutmix_alpha, --data.mix_prob)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from cnnbench.data import ImageDataModule
from cnnbench.data.fast import IndexBatch
from cnnbench.models.simple_cnn import SimpleCNN
from tests.helpers.runs import STEPS_PER_EPOCH, CnnbenchCLI, assert_same_tensors, base_args, main


def train_batches(cifar_dir: Path, epoch: int = 0, **options: float) -> list[tuple[IndexBatch, tuple]]:
    """Each training batch of ``epoch`` as the loader yields it (with its draw) and as the model gets it."""
    dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, download=False, **options)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    batches = []
    for batch in loader:
        drawn = dm.on_before_batch_transfer(batch, 0)
        batches.append((drawn, dm.on_after_batch_transfer(drawn, 0)))
    return batches


def test_mixup_is_a_convex_combination_with_the_drawn_lambda(cifar_dir: Path) -> None:
    plain = train_batches(cifar_dir)
    mixed = train_batches(cifar_dir, mixup_alpha=0.4)
    for (_, (x, y)), (drawn, (mx, my, targets)) in zip(plain, mixed, strict=True):
        lam = drawn.mix.lam
        assert drawn.mix.op == "mixup" and 0.0 < lam < 1.0
        assert torch.equal(my, y)  # the hard labels are the unmixed batch's
        previous = torch.cat([x[-1:], x[:-1]])  # image i is mixed with image i - 1
        torch.testing.assert_close(mx, lam * x + (1 - lam) * previous)
        one_hot = F.one_hot(y, 10).float()
        torch.testing.assert_close(targets, lam * one_hot + (1 - lam) * torch.cat([one_hot[-1:], one_hot[:-1]]))
    assert len({drawn.mix.lam for drawn, _ in mixed}) == len(mixed)  # a lambda of its own per batch


def test_cutmix_pastes_a_box_whose_area_matches_lambda(cifar_dir: Path) -> None:
    plain = train_batches(cifar_dir)
    mixed = train_batches(cifar_dir, cutmix_alpha=1.0)
    pasted_any = False
    for (_, (x, y)), (drawn, (mx, _, targets)) in zip(plain, mixed, strict=True):
        previous = torch.cat([x[-1:], x[:-1]])
        top, left, bottom, right = drawn.mix.box
        inside = torch.zeros(32, 32, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(mx[..., inside], previous[..., inside]) and torch.equal(mx[..., ~inside], x[..., ~inside])
        assert drawn.mix.lam == pytest.approx(1 - inside.sum().item() / (32 * 32))
        # Each image's target weighs its own label by the area left to it.
        lam = drawn.mix.lam
        own = targets[torch.arange(len(y)), y]
        assert torch.all(own >= lam - 1e-6) and torch.allclose(targets.sum(1), torch.ones(len(y)))
        pasted_any |= bool(inside.any())
    assert pasted_any


def test_same_seeds_give_the_same_mixed_batches_and_other_epochs_others(cifar_dir: Path) -> None:
    options = {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "mix_prob": 0.7}
    first, again = train_batches(cifar_dir, **options), train_batches(cifar_dir, **options)
    for (drawn_a, batch_a), (drawn_b, batch_b) in zip(first, again, strict=True):
        assert drawn_a.mix == drawn_b.mix and all(map(torch.equal, batch_a, batch_b))
    other = train_batches(cifar_dir, epoch=1, **options)
    assert [d.mix for d, _ in first] != [d.mix for d, _ in other]
    # The global torch RNG is not drawn from (it belongs to dropout and a resume restores it).
    dm = ImageDataModule(data_dir=str(cifar_dir), val_size=20, batch_size=16, download=False, **options)
    dm.setup("fit")
    raw = list(dm.train_dataloader())  # making the iterator draws a worker seed from it: not the mixing's doing
    state = torch.get_rng_state()
    for batch in raw:
        dm.on_after_batch_transfer(dm.on_before_batch_transfer(batch, 0), 0)
    assert torch.equal(state, torch.get_rng_state())


def test_mix_prob_zero_and_the_defaults_change_nothing(cifar_dir: Path) -> None:
    plain = train_batches(cifar_dir)
    assert all(len(batch) == 2 for _, batch in plain)  # off by default: (images, labels) as before
    never = train_batches(cifar_dir, mixup_alpha=1.0, cutmix_alpha=1.0, mix_prob=0.0)
    for (_, (x, y)), (drawn, (nx, ny, targets)) in zip(plain, never, strict=True):
        assert drawn.mix.op == "none" and torch.equal(nx, x) and torch.equal(ny, y)
        assert torch.equal(targets, F.one_hot(y, 10).float())


def test_soft_targets_train_with_smoothing_and_accuracy_counts_hard_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    # A training step outside a Trainer: no trainer to ask, nothing logged.
    monkeypatch.setattr(SimpleCNN, "trainer", None)
    monkeypatch.setattr("cnnbench.classifier.should_update_logs", lambda trainer: False)
    torch.manual_seed(0)
    model = SimpleCNN(label_smoothing=0.1)
    images, labels = torch.randn(8, 3, 32, 32), torch.arange(8)
    # One-hot targets give the hard-label loss, label smoothing included.
    hard = model.training_step((images, labels), 0)
    soft = model.training_step((images, labels, F.one_hot(labels, 10).float()), 0)
    torch.testing.assert_close(soft, hard)
    # Targets that disagree with the labels: the accuracy still counts the hard labels of the unmixed images.
    model.train_acc.reset()
    logits = model(images)
    model.training_step((images, labels, F.one_hot((labels + 1) % 10, 10).float()), 0)
    assert model.train_acc.compute().item() == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert model.train_acc.compute().item() != pytest.approx((logits.argmax(1) == (labels + 1) % 10).float().mean())


def test_mid_epoch_resume_with_mixing_gives_the_uninterrupted_weights(cifar_dir: Path, tmp_path: Path) -> None:
    mix = ("--data.mixup_alpha=0.4", "--data.cutmix_alpha=1.0", "--data.mix_prob=0.8", "--trainer.deterministic=true")

    def fit(root: Path, *extra: str) -> CnnbenchCLI:
        return CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, *mix, "--trainer.max_epochs=2", *extra)])

    straight = fit(tmp_path / "straight")
    stopped = fit(tmp_path / "resumed", "--trainer.max_steps=7")
    assert stopped.trainer.global_step == 7
    resumed = fit(tmp_path / "resumed", "--ckpt_path=last")
    assert resumed.trainer.global_step == 2 * STEPS_PER_EPOCH
    expected = straight.model.state_dict()
    assert_same_tensors(expected, resumed.model.state_dict())
    # Mixing is on: the trained weights are not those of an unmixed run.
    unmixed = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path / "plain", "--trainer.max_epochs=2")])
    assert not torch.equal(unmixed.model.state_dict()["backbone.0.weight"], expected["backbone.0.weight"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--data.mixup_alpha=-0.2", "--data.mixup_alpha must be >= 0 (got -0.2)"),
        ("--data.cutmix_alpha=-1", "--data.cutmix_alpha must be >= 0 (got -1)"),
        ("--data.mix_prob=1.5", "--data.mix_prob must be in [0, 1] (got 1.5)"),
    ],
)
def test_out_of_range_mixing_options_fail_in_one_line(
    option: str, message: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, tmp_path, "--data.mixup_alpha=0.2", option)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"cnnbench: error: {message}" in err and "Traceback" not in err


def test_the_per_image_path_refuses_mixing(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, tmp_path, "--data.cutmix_alpha=1.0", "--data.fast=false")])
    assert exit_info.value.code == 2
    assert "need the in-memory path (--data.fast true)" in capsys.readouterr().err


def test_the_mixing_math_is_torchvisions() -> None:
    """Given torchvision's draw (read back from its output), apply_mix gives its images and targets."""
    from torchvision.transforms import v2

    from cnnbench.data.mixing import MixDraw, apply_mix

    torch.manual_seed(3)
    images, labels = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4, 5])
    # MixUp: lam is the weight of each image's own label.
    tv_images, tv_targets = v2.MixUp(alpha=0.4, num_classes=10)(images, labels)
    lam = tv_targets[0, 0].item()
    ours = apply_mix(images, labels, 10, MixDraw("mixup", lam))
    torch.testing.assert_close(ours[0], tv_images)
    torch.testing.assert_close(ours[1], tv_targets)
    # CutMix: the box is where the images changed, lam the area left.
    tv_images, tv_targets = v2.CutMix(alpha=1.0, num_classes=10)(images, labels)
    rows, cols = torch.nonzero((tv_images != images).any(0).any(0), as_tuple=True)
    box = (rows.min().item(), cols.min().item(), rows.max().item() + 1, cols.max().item() + 1)
    ours = apply_mix(images, labels, 10, MixDraw("cutmix", tv_targets[0, 0].item(), box))
    assert torch.equal(ours[0], tv_images)
    torch.testing.assert_close(ours[1], tv_targets)
