"""AirNet's activation option: SiLU in the conv groups (hiverge/cifar10-speedrun), GELU after the whitening."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cnnbench.models import AirNet


def test_silu_replaces_gelu_in_the_conv_groups_only() -> None:
    torch.manual_seed(0)
    gelu = AirNet(whiten_images=0)
    silu = AirNet(whiten_images=0, activation="silu")
    silu.load_state_dict(gelu.state_dict())
    assert isinstance(silu.backbone[1], nn.GELU)  # after the whitening layer
    groups = [m for m in silu.backbone if isinstance(m, nn.Sequential)]
    assert [type(m) for g in groups for m in g if not isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d))] == [
        nn.SiLU
    ] * 6
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stem = gelu.backbone[1](gelu.backbone[0](x))
        group_input = groups[0][2](groups[0][1](groups[0][0](stem)))  # conv, pool, BN: the first activation's input
        assert torch.allclose(groups[0][3](group_input), F.silu(group_input))
        assert not torch.allclose(silu.eval()(x), gelu.eval()(x))
