"""AirNet's airbench pieces: patch whitening from the data, dirac init, frozen BatchNorm scales, scaled logits."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_the_whitening_bias_trains_at_the_batchnorm_biases_lr_when_asked(cifar_dir: Path, tmp_path: Path) -> None:
    def group_lrs(root: str, *extra: str) -> tuple[float, float, float]:
        args = [a for a in base_args(cifar_dir, tmp_path / root, "--trainer.max_steps=1", *extra)
                if a != "--model=simple_cnn"]  # fmt: skip
        cli = CnnbenchCLI(args=["fit", "--model=airnet", "--model.whiten_images=40", "--model.norm_lr_scale=64",
                                "--model.decay_norm_and_bias=true", "--model.weight_decay=0.01", *args])  # fmt: skip
        model, optimizer = cli.model, cli.trainer.optimizers[0]
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        bias, head = group_of[id(model.backbone[0].bias)], group_of[id(model.backbone[-1].weight)]
        shift = group_of[id(model.backbone[2][2].bias)]  # the first BatchNorm's
        assert bias["lr"] * bias["weight_decay"] == pytest.approx(head["lr"] * head["weight_decay"])  # decay per step
        return bias["lr"], head["lr"], shift["lr"]

    bias, head, shift = group_lrs("default")
    assert bias == head and shift == pytest.approx(64 * head)
    bias, head, shift = group_lrs("at_norm_lr", "--model.whiten_bias_at_norm_lr=true")
    assert bias == shift == pytest.approx(64 * head)


class StandInTrainer:
    """What AirNet.on_fit_start reads of a trainer."""

    def __init__(self, rank: int, datamodule: object) -> None:
        self.global_rank, self.ckpt_path, self.datamodule = rank, None, datamodule


class RankImages:
    """A data module whose training images differ by rank (as eigh's last bits may differ between machines)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def training_images(self, n: int) -> torch.Tensor:
        return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(self.rank))


def _whiten_on_rank(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        model = AirNet(image_size=8, whiten_images=32)
        model.trainer = trainer = StandInTrainer(rank, RankImages(rank))  # noqa: F841 (held weakly)
        model.on_fit_start()
        torch.save(model.backbone[0].state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_under_ddp_rank_zero_computes_the_whitening_and_every_rank_receives_it(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_whiten_on_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert_same_tensors(ranks[0], ranks[1])
    expected = AirNet(image_size=8)
    expected.init_whitening(RankImages(0).training_images(32))
    assert_same_tensors(expected.backbone[0].state_dict(), ranks[0])


def test_a_plain_lightning_data_module_sets_the_whitening_from_its_train_batches(tmp_path: Path) -> None:
    from tests.helpers.custom_data import NoiseDataModule

    args = [
        "fit", "--model=airnet", "--model.whiten_images=64", "--data=tests.helpers.custom_data.NoiseDataModule",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=1", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    ]  # fmt: skip
    cli = CnnbenchCLI(args=args)
    expected = AirNet(in_channels=1, image_size=16)
    expected.init_whitening(NoiseDataModule().images)  # all 64 images, in whichever order the loader gave them
    # The fit's one step moved the bias; the frozen filters are those of the data module's images.
    assert torch.allclose(cli.model.backbone[0].weight, expected.backbone[0].weight, atol=1e-4)
