"""TTA: its views' weights, on the least-confident share of the images (cnnbench.tta, evaluation_logits)."""

from __future__ import annotations

from pathlib import Path

import torch

import cnnbench.models  # noqa: F401  (defines the zoo)
from cnnbench.models.registry import model_specs
from cnnbench.tta import evaluation_passes, least_confident, tta_logits
from tests.helpers.runs import CnnbenchCLI, base_args


def test_least_confident_picks_the_rows_with_the_lowest_top_probability() -> None:
    logits = torch.tensor([[5.0, 0.0], [0.1, 0.0], [0.0, 3.0], [1.0, 1.2], [9.0, 0.0]])
    assert sorted(least_confident(logits, 0.4).tolist()) == [1, 3]
    assert sorted(least_confident(logits, 0.5).tolist()) == [1, 2, 3]  # ceil(2.5) rows
    assert least_confident(logits, 0.0).numel() == 0


def test_evaluation_passes_count_the_plain_pass_and_the_views_of_the_share() -> None:
    assert evaluation_passes(10, 4, flip=True, translate=True) == 60
    assert evaluation_passes(10, 4, flip=True, translate=False, share=0.5) == 10 + 5
    # batches of 4, 4 and 2: ceil(1) + ceil(1) + ceil(0.5) images get the other 5 views
    assert evaluation_passes(10, 4, flip=True, translate=True, share=0.25) == 10 + 3 * 5
    assert evaluation_passes(10, 4, flip=False, translate=False, share=0.25) == 10


def classifier(share: float):
    spec = model_specs()["simple_cnn"]
    cls, init_args = spec.family, spec.init_args
    torch.manual_seed(0)
    return cls(**init_args, flip_tta=True, translate_tta=True, tta_uncertain_fraction=share).eval()


def test_only_the_least_confident_images_get_tta_and_only_their_views_run() -> None:
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    full, partial = classifier(1.0), classifier(0.25)
    partial.load_state_dict(full.state_dict())
    seen = []
    partial.backbone.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    with torch.no_grad():
        plain, tta, mixed = full(images), full.evaluation_logits(images), partial.evaluation_logits(images)
    chosen = least_confident(plain, 0.25)
    others = torch.ones(8, dtype=torch.bool)
    others[chosen] = False
    assert len(chosen) == 2
    torch.testing.assert_close(mixed[chosen], tta[chosen])
    assert torch.equal(mixed[others], plain[others])
    assert not torch.allclose(mixed[chosen], plain[chosen])
    assert sum(seen) == evaluation_passes(8, 8, flip=True, translate=True, share=0.25) == 8 + 2 * 5


def test_the_views_are_weighted_as_airbench_or_alike_as_the_speedrun() -> None:
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    model = classifier(1.0)
    with torch.no_grad():
        padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")
        shifts = [images, padded[..., :32, :32], padded[..., 2:, 2:]]
        views = [model(x) for shifted in shifts for x in (shifted, shifted.flip(-1))]
        airbench = tta_logits(model, images, flip=True, translate=True)
        equal = tta_logits(model, images, flip=True, translate=True, equal_weights=True)
    torch.testing.assert_close(airbench, (views[0] + views[1]) / 4 + sum(views[2:]) / 8)
    torch.testing.assert_close(equal, sum(views) / 6)
    assert not torch.allclose(equal, airbench)


def test_a_test_evaluates_as_it_is_told_not_as_the_checkpoint_was(cifar_dir: Path, tmp_path: Path) -> None:
    trained = ("--model.flip_tta=true", "--model.translate_tta=true", "--model.tta_uncertain_fraction=0.25")
    fit = CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, *trained, "--trainer.max_epochs=1")])
    last = fit.run_dir / "checkpoints/last.ckpt"
    told = ("--model.tta_uncertain_fraction=0.5", "--model.tta_equal_weights=true")
    test = CnnbenchCLI(args=["test", *base_args(cifar_dir, tmp_path, *trained, *told, f"--ckpt_path={last}")])
    assert test.model.hparams.tta_uncertain_fraction == 0.5
    assert test.model.hparams.tta_equal_weights is True
