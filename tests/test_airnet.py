"""AirNet's airbench pieces: patch whitening from the data, dirac init, frozen BatchNorm scales, scaled logits."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnbench.models.airnet import AirNet, whitening_weights
from tests.helpers.runs import CnnbenchCLI, assert_same_tensors, base_args


def patches_of(images: torch.Tensor) -> torch.Tensor:
    return images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).flatten(0, 2)


def test_whitening_layer_decorrelates_the_patches_it_was_set_from() -> None:
    torch.manual_seed(0)
    mixing = torch.randn(3, 3)  # correlated channels, as real images have
    images = torch.einsum("ij,njhw->nihw", mixing, torch.randn(64, 3, 8, 8)) + 0.5
    model = AirNet(image_size=8)
    model.init_whitening(images)
    whiten = model.backbone[0]
    out = whiten(images)[:, :12].permute(0, 2, 3, 1).flatten(0, 2).double()  # the 12 filters before their negatives
    assert out.mean(dim=0).abs().max() < 1e-4  # the bias centers them
    covariance = out.T @ (out - out.mean(dim=0)) / (len(out) - 1)
    off_diagonal = covariance - torch.diag(covariance.diag())
    assert off_diagonal.abs().max() < 1e-3 and (covariance.diag() <= 1 + 1e-3).all()
    assert covariance.diag().max() > 0.5  # not decorrelated by switching channels off
    assert torch.equal(whiten.weight[12:], -whiten.weight[:12])


def test_later_convolutions_start_as_identity_maps_and_only_bn_shifts_train() -> None:
    model = AirNet()
    conv: nn.Conv2d = model.backbone[2][0]  # the first conv of the first group: 24 -> 64 channels
    x = torch.randn(1, 24, 6, 6)
    assert torch.allclose(conv(x)[:, :24], x, atol=1e-6)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(not n.weight.requires_grad and n.bias.requires_grad for n in norms)
    assert not model.backbone[0].weight.requires_grad


def test_a_fit_sets_the_whitening_from_its_training_images_and_a_resume_keeps_it(
    cifar_dir: Path, tmp_path: Path
) -> None:
    args = [a for a in base_args(cifar_dir, tmp_path, "--trainer.max_epochs=1") if a != "--model=simple_cnn"]
    fit = CnnbenchCLI(args=["fit", "--model=airnet", "--model.whiten_images=40", *args])
    whiten = fit.model.backbone[0].weight.detach().cpu()
    expected = whitening_weights(patches_of(fit.model.training_images(40)))
    assert torch.allclose(whiten, expected, atol=1e-5)
    resumed = CnnbenchCLI(
        args=["fit", "--model=airnet", *args, "--data.split_seed=1", "--trainer.max_epochs=2", "--ckpt_path=last"]
    )
    assert resumed.trainer.current_epoch == 2
    # Other training images (another split), yet the checkpoint's whitening stays: it is not set again.
    assert not torch.allclose(resumed.model.training_images(40), fit.model.training_images(40))
    assert torch.equal(resumed.model.backbone[0].weight.detach().cpu(), whiten)


def test_without_dirac_or_whitening_the_layers_are_ordinary_trained_convolutions() -> None:
    conv: nn.Conv2d = AirNet(dirac=False).backbone[2][0]
    x = torch.randn(1, 24, 6, 6)
    assert not torch.allclose(conv(x)[:, :24], x, atol=1e-2)
    assert AirNet(whiten_images=0).backbone[0].weight.requires_grad  # trained, as any first layer


def test_the_whitening_bias_stops_training_after_its_epochs_and_a_resumed_run_stops_it_alike(
    cifar_dir: Path, tmp_path: Path
) -> None:
    run = ("--trainer.max_epochs=2", "--trainer.deterministic=true", "--checkpoint.last_every_n_steps=1")

    def fit(root: str, *extra: str) -> CnnbenchCLI:
        args = [a for a in base_args(cifar_dir, tmp_path / root, *run, *extra) if a != "--model=simple_cnn"]
        return CnnbenchCLI(args=["fit", "--model=airnet", "--model.whiten_images=40", *args])

    frozen = "--model.whiten_bias_epochs=1"  # 5 steps an epoch: frozen from step 5
    straight = fit("straight", frozen)
    stopped = fit("resumed", frozen, "--trainer.max_steps=7")
    bias_at_7 = stopped.model.backbone[0].bias.detach().clone()
    conv_at_7 = stopped.model.backbone[2][0].weight.detach().clone()
    resumed = fit("resumed", frozen, "--ckpt_path=last")
    assert resumed.trainer.global_step == 10
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())
    assert torch.equal(resumed.model.backbone[0].bias, bias_at_7)  # no update, no decay after step 5
    assert not torch.equal(resumed.model.backbone[2][0].weight, conv_at_7)  # the rest trains on
    initial = AirNet()
    initial.init_whitening(straight.model.training_images(40))
    assert not torch.allclose(bias_at_7, initial.backbone[0].bias)  # it trained in the first epoch
    trained_on = fit("control")
    assert not torch.allclose(trained_on.model.backbone[0].bias, bias_at_7)  # unfrozen, it moves on
