"""Muon (cnnbench.optim_muon): torch.optim.Muon's update on 2-D weights and on conv filters' matrix views, the
parameter grouping of every zoo model, the renormalization, and its state across a save and load."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim._muon import _zeropower_via_newtonschulz  # torch's own iteration, the reference

import cnnbench.models  # noqa: F401  (defines the zoo)
from cnnbench.models.registry import model_specs
from cnnbench.optim import WarmupDecayLR, param_groups
from cnnbench.optim_muon import NS_COEFFICIENTS, Muon, muon_groups, newton_schulz, output_layer, renormalize_
from tests.helpers.runs import base_args, main


@pytest.mark.parametrize("shape", [(8, 20), (20, 8), (16, 16)])
def test_newton_schulz_is_torchs_iteration_and_orthogonalizes(shape: tuple[int, int]) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    ours = newton_schulz(g, steps=5)
    assert torch.equal(ours, _zeropower_via_newtonschulz(g, NS_COEFFICIENTS, 5, 1e-7))
    # About U V^T: the singular values land near 1 (the quintic's band, roughly 0.7 to 1.2), whatever g's were.
    singular = torch.linalg.svdvals(ours.float())
    assert singular.min() > 0.6 and singular.max() < 1.3
    assert not torch.equal(newton_schulz(g, steps=3), ours)  # the step count is used


def make_pair(weight: torch.Tensor, grads: list[torch.Tensor], lr: float = 0.1, wd: float = 0.05):
    """Our Muon and torch.optim.Muon stepped through ``grads``: the weight each ends with."""
    ours = nn.Parameter(weight.clone())
    theirs = nn.Parameter(weight.reshape(len(weight), -1).clone())
    a = Muon([{"params": [ours], "lr": lr, "weight_decay": wd, "muon": True}], momentum=0.9, nesterov=True)
    b = torch.optim.Muon([theirs], lr=lr, weight_decay=wd, momentum=0.9, nesterov=True)
    for g in grads:
        ours.grad, theirs.grad = g.clone(), g.reshape(len(g), -1).clone()
        a.step()
        b.step()
    return ours.detach(), theirs.detach()


@pytest.mark.parametrize("shape", [(12, 30), (30, 12), (6, 3, 3, 3), (4, 16, 3, 3)])
def test_a_step_is_torch_muons_step_of_the_matrix_view(shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(*shape, generator=gen)
    grads = [torch.randn(*shape, generator=gen) for _ in range(3)]
    ours, theirs = make_pair(weight, grads)
    assert ours.shape == shape
    torch.testing.assert_close(ours.reshape(shape[0], -1), theirs, rtol=0, atol=1e-6)
    assert not torch.allclose(ours, weight)


def test_renormalization_rescales_the_weight_on_every_kth_step() -> None:
    gen = torch.Generator().manual_seed(2)
    weight = torch.randn(8, 4, 3, 3, generator=gen) * 3
    grads = [torch.randn(8, 4, 3, 3, generator=gen) for _ in range(2)]
    p = nn.Parameter(weight.clone())
    opt = Muon([{"params": [p], "lr": 0.1, "weight_decay": 0.0, "muon": True}], momentum=0.0, renorm_every=2)
    reference = weight.clone()
    for step, g in enumerate(grads, start=1):
        p.grad = g
        opt.step()
        if step % 2 == 0:  # rescaled to norm sqrt(8) before the update
            reference = reference * (8**0.5 / reference.norm())
        reference = reference - 0.1 * newton_schulz(g.reshape(8, -1)).float().view_as(g)
        torch.testing.assert_close(p.detach(), reference, rtol=0, atol=1e-5)
    q = torch.randn(5, 7) * 4
    renormalize_(q)
    assert q.norm().item() == pytest.approx(5**0.5)


def test_the_renormalization_period_grows_over_the_run_when_asked() -> None:
    # Period 2 + int(4 * step / 10) steps since the last rescaling: due at steps 2 (period 2) and 6 (period 4);
    # at step 10 the period is 6 and only 4 steps have passed.
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(8, 4, 3, 3, generator=gen) * 3
    grads = [torch.randn(8, 4, 3, 3, generator=gen) for _ in range(10)]
    p = nn.Parameter(weight.clone())
    group = {"params": [p], "lr": 0.1, "weight_decay": 0.0, "muon": True}
    opt = Muon([group], momentum=0.0, renorm_every=2, renorm_every_final=6, total_steps=10)
    reference = weight.clone()
    for step, g in enumerate(grads, start=1):
        p.grad = g
        opt.step()
        if step in (2, 6):
            reference = reference * (8**0.5 / reference.norm())
        reference = reference - 0.1 * newton_schulz(g.reshape(8, -1)).float().view_as(g)
        torch.testing.assert_close(p.detach(), reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("aux", ["sgd", "adamw"])
def test_the_other_groups_step_as_torchs_sgd_and_adamw(aux: str) -> None:
    gen = torch.Generator().manual_seed(3)
    weight, grads = torch.randn(10, generator=gen), [torch.randn(10, generator=gen) for _ in range(3)]
    ours, theirs = nn.Parameter(weight.clone()), nn.Parameter(weight.clone())
    a = Muon([{"params": [ours], "lr": 0.1, "weight_decay": 0.01, "aux": aux}], momentum=0.85, nesterov=True)
    if aux == "sgd":
        b = torch.optim.SGD([theirs], lr=0.1, weight_decay=0.01, momentum=0.85, nesterov=True)
    else:
        b = torch.optim.AdamW([theirs], lr=0.1, weight_decay=0.01)
    for g in grads:
        ours.grad, theirs.grad = g.clone(), g.clone()
        a.step()
        b.step()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", sorted(model_specs()))
def test_every_zoo_model_splits_into_muon_matrices_and_the_rest(name: str) -> None:
    spec = model_specs()[name]
    cls, init_args = spec.family, spec.init_args
    model = cls(**init_args, num_classes=10, in_channels=3, image_size=72 if name == "alexnet" else 32)
    groups = muon_groups(param_groups(model, 5e-4), model, lr=0.02, momentum=0.9, weight_decay=0.0, aux="sgd")
    for group in groups[1:]:
        group.setdefault("lr", 0.05)
    trained = [p for p in model.parameters() if p.requires_grad]
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(trained)  # each trained parameter exactly once
    muon, rest = groups[0], groups[1:]
    assert muon["muon"] and not any(g["muon"] for g in rest) and muon["params"]
    head = output_layer(model)
    assert head is not None and head.weight.shape[0] == 10  # the output layer: one row per class
    head_ids = {id(p) for p in head.parameters()}
    assert all(p.ndim >= 2 and id(p) not in head_ids for p in muon["params"])
    assert all(p.ndim <= 1 or id(p) in head_ids for g in rest for p in g["params"])
    if name == "airnet":  # the frozen whitening filters are in no group
        assert not any(p is model.backbone[0].weight for p in grouped)


def test_the_schedule_scales_every_group_in_proportion() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = param_groups(model, 5e-4)
    for group in groups:
        group["lr"] = 0.05
    optimizer = Muon(muon_groups(groups, model, lr=0.2, momentum=0.9, weight_decay=0.0, aux="sgd"), momentum=0.9)
    scheduler = WarmupDecayLR(optimizer, total_steps=10, warmup_steps=2)
    muon_lrs = []
    for _ in range(8):
        lrs = [g["lr"] for g in optimizer.param_groups]
        assert lrs[0] == pytest.approx(4 * lrs[1])
        muon_lrs.append(lrs[0])
        optimizer.step()
        scheduler.step()
    assert muon_lrs[0] == pytest.approx(0.1) and max(muon_lrs) == pytest.approx(0.2) and muon_lrs[-1] < 0.1


@pytest.mark.parametrize("renorm_every_final", [0, 4])
def test_state_dict_round_trip_continues_exactly(renorm_every_final: int) -> None:
    gen = torch.Generator().manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    x, y = torch.randn(8, 3, 6, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen)

    def build(m: nn.Module) -> Muon:
        groups = param_groups(m, 1e-3)
        for g in groups:
            g["lr"] = 0.05
        return Muon(muon_groups(groups, m, 0.1, 0.9, 1e-2, "sgd"), momentum=0.8, renorm_every=2,
                    renorm_every_final=renorm_every_final, total_steps=5)  # fmt: skip

    def train(m: nn.Module, opt: Muon, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()

    straight = copy.deepcopy(model)
    opt = build(straight)
    train(straight, opt, 5)
    half = copy.deepcopy(model)
    opt_half = build(half)
    train(half, opt_half, 3)
    resumed, state = copy.deepcopy(half), copy.deepcopy(opt_half.state_dict())
    opt_resumed = build(resumed)
    opt_resumed.load_state_dict(state)
    train(resumed, opt_resumed, 2)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("option", "value"),
    [("muon_lr", "0"), ("muon_momentum", "1.0"), ("muon_weight_decay", "-1"), ("muon_ns_steps", "0"),
     ("muon_renorm_every", "-1"), ("tta_uncertain_fraction", "1.5")],
)  # fmt: skip
def test_bad_muon_and_tta_options_exit_2_with_one_line(
    option: str, value: str, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base_args(cifar_dir, tmp_path, "--model.optimizer=muon", f"--model.{option}={value}")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--model.{option}" in err and "Traceback" not in err
    assert not any(tmp_path.rglob("config.yaml"))  # refused before the run folder was made
