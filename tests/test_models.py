"""The model zoo: every registered model, on both input kinds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbench.models import ImageClassifier, create_model, list_models
from cnnbench.models.registry import model_specs, spec_of
from cnnbench.models.summary import describe
from tests.helpers.model_params import EXPECTED_PARAMS, PUBLISHED_PARAMS


def input_kinds(name: str) -> list[tuple[int, int]]:
    return sorted(EXPECTED_PARAMS[name], reverse=True)


def test_every_registered_model_is_documented_and_has_a_lightning_module() -> None:
    assert set(list_models()) == set(EXPECTED_PARAMS)
    for name, spec in model_specs().items():  # each name selects its family, and its family's options name it
        assert issubclass(spec.family, ImageClassifier) and spec_of(spec.class_path, spec.init_args) is spec, name
    with pytest.raises(KeyError, match="available: .*lenet5"):
        create_model("lenet6")


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_the_models_cnnbench_builds_have_the_published_parameter_counts(name: str) -> None:
    model = create_model(name, num_classes=10, in_channels=3, image_size=32)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", list_models())
def test_output_shape_and_parameter_count_on_both_input_kinds(name: str) -> None:
    for in_channels, image_size in input_kinds(name):
        model = create_model(name, num_classes=10, in_channels=in_channels, image_size=image_size).eval()
        with torch.no_grad():
            logits = model(torch.randn(2, in_channels, image_size, image_size))
        assert logits.shape == (2, 10)
        assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name][(in_channels, image_size)]
    assert create_model(name, num_classes=7, in_channels=1, image_size=input_kinds(name)[-1][1])(
        torch.randn(2, 1, input_kinds(name)[-1][1], input_kinds(name)[-1][1])
    ).shape == (2, 7)


# (input side, Adam LR) of the overfit test: the nets with global pooling at 16x16 to keep it cheap; the
# AlexNets (no BatchNorm, wide linear layers) with a smaller step; the flatten-sized small nets at 32x32.
OVERFIT_SETUP = {
    "alexnet": (72, 3e-4),  # its smallest input is 65x65
    "alexnet_cifar": (32, 3e-4),
    "alexnet_cifar7": (32, 3e-4),
    "lenet5": (32, 1e-3),
    "simple_cnn": (32, 1e-3),
    "airnet": (16, 1e-2),  # logits scaled by 1/9: a larger step for the same 40 steps
}


@pytest.mark.parametrize("name", list_models())
def test_one_batch_overfits(name: str) -> None:
    """Within 40 Adam steps on 8 fixed images the loss falls far below its start, and gradients reach every layer."""
    torch.manual_seed(0)
    size, lr = OVERFIT_SETUP.get(name, (16, 1e-3))
    model = create_model(name, num_classes=10, in_channels=3, image_size=size)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0  # memorizing 8 images is the point here, not regularization
    images, labels = torch.randn(8, 3, size, size), torch.arange(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(40):  # stops once memorized: the big nets get there in a few steps, the AlexNets need ~30
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] < 0.25 * losses[0]:
            break
    assert losses[-1] < 0.25 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in 40 steps"
    # The last step's gradients: every trained parameter (frozen ones excepted) got one, and none is all zeros (a
    # detached or unused layer).
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_gradient = [n for n, p in trained if p.grad is None or not p.grad.count_nonzero()]
    assert not no_gradient, f"{name}: no gradient reaches {no_gradient}"


def test_alexnet_rejects_inputs_too_small_for_its_stem() -> None:
    create_model("alexnet", image_size=65)
    with pytest.raises(ValueError, match="--data.image_size 224"):
        create_model("alexnet", image_size=64)


def test_flops_count_of_a_hand_computable_model() -> None:
    # simple_cnn at 3x32x32: conv 16 maps of 30x30, 27 multiply-adds each; linear 3600 x 10; 2 FLOPs per MAC.
    info = describe("simple_cnn", 3, 32)
    assert info.mflops * 1e6 == 2 * (16 * 30 * 30 * 27 + 3600 * 10)
    assert info.params == EXPECTED_PARAMS["simple_cnn"][(3, 32)]


def test_channels_last_changes_the_layout_not_the_logits() -> None:
    from cnnbench.models import ResNet

    torch.manual_seed(0)
    plain = ResNet(depth=18, image_size=16).eval()
    nhwc = ResNet(depth=18, image_size=16, channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    nhwc.configure_model()
    weights = [m.weight for m in nhwc.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(nhwc(x), plain(x), atol=1e-5)


def test_flip_tta_evaluates_an_image_and_its_mirror_alike() -> None:
    from cnnbench.models import FastNet

    torch.manual_seed(0)
    model = FastNet(flip_tta=True, image_size=16).eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        plain, mirrored = model(x), model(x.flip(-1))
        # The network itself is not mirror-symmetric (untrained, its logits are small: compare relatively).
        assert (plain - mirrored).abs().max() > 0.05 * plain.abs().max()
        assert torch.allclose(model.evaluation_logits(x), (plain + mirrored) / 2, rtol=1e-5, atol=0)
        assert torch.allclose(model.evaluation_logits(x), model.evaluation_logits(x.flip(-1)), rtol=1e-5, atol=1e-9)
        model.hparams.flip_tta = False
        assert torch.equal(model.evaluation_logits(x), plain)


def test_translate_tta_averages_the_image_and_two_mirrored_border_shifts() -> None:
    from cnnbench.models import FastNet

    torch.manual_seed(0)
    model = FastNet(flip_tta=True, translate_tta=True, image_size=16).eval()
    x = torch.randn(3, 3, 16, 16)
    # Shifted by one pixel up-left and down-right, the border mirrored (not repeated), indexed by hand.
    back = torch.tensor([1, *range(15)])  # row/column i shows i - 1; -1 mirrors to 1
    ahead = torch.tensor([*range(1, 16), 14])  # row/column i shows i + 1; 16 mirrors to 14
    shifted = [x[:, :, back][:, :, :, back], x[:, :, ahead][:, :, :, ahead]]
    with torch.no_grad():
        both = [(model(v) + model(v.flip(-1))) / 2 for v in (x, *shifted)]
        expected = both[0] / 2 + (both[1] + both[2]) / 4
        assert torch.allclose(model.evaluation_logits(x), expected, rtol=1e-5, atol=1e-7)
        assert (model.evaluation_logits(x) - both[0]).abs().max() > 1e-3 * both[0].abs().max()  # the shifts count
        model.hparams.flip_tta = False
        plain = [model(v) for v in (x, *shifted)]
        assert torch.allclose(model.evaluation_logits(x), plain[0] / 2 + (plain[1] + plain[2]) / 4, atol=1e-7)


@pytest.mark.slow
def test_compiled_backbone_keeps_its_checkpoint_keys_and_logits() -> None:
    from cnnbench.models import SimpleCNN

    compiled, plain = SimpleCNN(compile=True).eval(), SimpleCNN().eval()
    plain.load_state_dict(compiled.state_dict())
    compiled.configure_model()
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no _orig_mod. prefixes
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(compiled(x), plain(x), atol=1e-5)
