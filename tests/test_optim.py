from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnbench.optim import WarmupDecayLR, lr_factor, param_groups


def test_warmup_then_cosine_values() -> None:
    f = lambda step: lr_factor(step, total_steps=110, warmup_steps=10, min_lr_ratio=0.1, decay="cosine")  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(110) == pytest.approx(0.1)
    assert lr_factor(50, 110, 10, 0.0, decay="constant") == 1.0


def test_norm_and_bias_parameters_get_no_weight_decay() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert {p.ndim for p in decay["params"]} == {4, 2} and len(decay["params"]) == 2
    assert {p.ndim for p in no_decay["params"]} == {1} and no_decay["weight_decay"] == 0.0
    assert len(param_groups(model, 0.1, decay_norm_and_bias=True)) == 1


def test_resumed_scheduler_uses_the_new_schedule_length_from_the_first_step() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = WarmupDecayLR(opt, total_steps=20, warmup_steps=2)
    for _ in range(7):
        opt.step()
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = WarmupDecayLR(opt2, total_steps=40, warmup_steps=2)
    opt2.load_state_dict(opt_state)  # carries the old run's lr, as Lightning restores it first
    sched2.load_state_dict(sched_state)
    expected = 0.5 * (1 + math.cos(math.pi * (7 - 2) / (40 - 2)))
    assert opt2.param_groups[0]["lr"] == pytest.approx(expected)
    assert sched2.last_epoch == 7


def test_linear_decay_is_the_triangular_schedule() -> None:
    f = lambda step: lr_factor(step, total_steps=100, warmup_steps=20, min_lr_ratio=0.07, decay="linear")  # noqa: E731
    assert f(0) == pytest.approx(1 / 20) and f(19) == pytest.approx(1.0)
    assert f(20) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.07 + 0.93 * (1 - 40 / 80))
    assert f(100) == pytest.approx(0.07) and f(120) == pytest.approx(0.07)


def test_norm_lr_scale_puts_the_normalization_parameters_in_a_group_of_their_own() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)  # a frozen scale (AirNet's BatchNorm) is left out
    norm = [model[1].bias, model[2].weight, model[2].bias]
    decay, no_decay, scaled = param_groups(model, weight_decay=0.1, norm_lr_scale=64)
    assert [id(p) for p in scaled["params"]] == [id(p) for p in norm]
    assert scaled["lr_scale"] == 64 and scaled["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(model[0].weight), id(model[4].weight)]
    assert [id(p) for p in no_decay["params"]] == [id(model[0].bias), id(model[4].bias)]
    # Decayed, the normalization parameters keep the others' decay per step: LR x 64, decay / 64.
    decay, scaled = param_groups(model, weight_decay=0.1, decay_norm_and_bias=True, norm_lr_scale=64)
    assert scaled["weight_decay"] == pytest.approx(0.1 / 64) and len(decay["params"]) == 4
    assert len(param_groups(model, 0.1, norm_lr_scale=1.0)) == 2  # no third group at the others' LR


def test_the_normalization_group_follows_the_schedule_at_its_scaled_lr(cifar_dir: Path, tmp_path: Path) -> None:
    """Through a fit: every step's LR of each group is the triangular schedule written out, the norm group's x 64."""
    from tests.helpers.callbacks import RecordLRs
    from tests.helpers.runs import LR, STEPS_PER_EPOCH, CnnbenchCLI, base_args

    RecordLRs.seen.clear()
    options = ("--model=airnet", "--model.norm_lr_scale=64", "--model.lr_schedule=linear", "--model.min_lr_ratio=0.1",
               "--model.warmup_epochs=1", "--trainer.max_epochs=3",
               "--trainer.callbacks+=tests.helpers.callbacks.RecordLRs")  # fmt: skip
    CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, *options)])
    total, warmup = 3 * STEPS_PER_EPOCH, STEPS_PER_EPOCH
    expected = [LR * (s + 1) / warmup if s < warmup else LR * (0.1 + 0.9 * (1 - (s - warmup) / (total - warmup)))
                for s in range(total)]  # fmt: skip
    assert len(RecordLRs.seen) == total
    assert sorted({scale for groups in RecordLRs.seen for _, scale in groups}) == [1.0, 64.0]
    for step, groups in enumerate(RecordLRs.seen):
        assert [lr for lr, _ in groups] == pytest.approx([expected[step] * scale for _, scale in groups]), step
