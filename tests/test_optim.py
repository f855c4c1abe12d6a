from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnbench.optim import WarmupCosineLR, param_groups, warmup_cosine_factor


def test_warmup_then_cosine_values() -> None:
    f = lambda step: warmup_cosine_factor(step, total_steps=110, warmup_steps=10, min_lr_ratio=0.1, cosine=True)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(110) == pytest.approx(0.1)
    assert warmup_cosine_factor(50, 110, 10, 0.0, cosine=False) == 1.0


def test_norm_and_bias_parameters_get_no_weight_decay() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, weight_decay=0.1)
    assert {p.ndim for p in decay["params"]} == {4, 2} and len(decay["params"]) == 2
    assert {p.ndim for p in no_decay["params"]} == {1} and no_decay["weight_decay"] == 0.0
    assert len(param_groups(model, 0.1, decay_norm_and_bias=True)) == 1


def test_resumed_scheduler_uses_the_new_schedule_length_from_the_first_step() -> None:
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = WarmupCosineLR(opt, total_steps=20, warmup_steps=2)
    for _ in range(7):
        opt.step()
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = WarmupCosineLR(opt2, total_steps=40, warmup_steps=2)
    opt2.load_state_dict(opt_state)  # carries the old run's lr, as Lightning restores it first
    sched2.load_state_dict(sched_state)
    expected = 0.5 * (1 + math.cos(math.pi * (7 - 2) / (40 - 2)))
    assert opt2.param_groups[0]["lr"] == pytest.approx(expected)
    assert sched2.last_epoch == 7
