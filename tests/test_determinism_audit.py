"""No zoo model may use an op that ``torch.use_deterministic_algorithms(True)`` refuses on CUDA (issue 27, item 4).

The CPU has no such refusals, so the test records, with a dispatch mode, every aten op of a forward and a backward
of each registered backbone (and of the fast recipes' LightningModules with their configs' options, under bf16
autocast), and fails on any op of the list below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import cnnbench.models as zoo
from cnnbench.models.layers import GlobalMaxPool

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "cifar10"

# torch 2.14's torch.use_deterministic_algorithms docstring, "The following normally-nondeterministic operations will
# throw a RuntimeError when mode=True", written as the aten ops that raise (the backward ops where the docs say
# "when attempting to differentiate a CUDA tensor"). NLLLoss: the alert is in the spatial (nll_loss2d) CUDA kernel;
# the (N, C) nll_loss every classifier's cross-entropy uses is deterministic. Quantized resize_ is left out.
RAISES_ON_CUDA = {
    "avg_pool3d_backward": "nn.AvgPool3d",
    "_adaptive_avg_pool2d_backward": "nn.AdaptiveAvgPool2d",
    "_adaptive_avg_pool3d_backward": "nn.AdaptiveAvgPool3d",
    "adaptive_max_pool2d_backward": "nn.AdaptiveMaxPool2d",
    "fractional_max_pool2d_backward": "nn.FractionalMaxPool2d",
    "fractional_max_pool3d_backward": "nn.FractionalMaxPool3d",
    "max_unpool2d": "nn.MaxUnpool1d/2d",
    "max_unpool3d": "nn.MaxUnpool3d",
    "upsample_linear1d_backward": "F.interpolate linear",
    "upsample_bilinear2d_backward": "F.interpolate bilinear",
    "_upsample_bilinear2d_aa_backward": "F.interpolate bilinear (antialias)",
    "upsample_bicubic2d_backward": "F.interpolate bicubic",
    "_upsample_bicubic2d_aa_backward": "F.interpolate bicubic (antialias)",
    "upsample_trilinear3d_backward": "F.interpolate trilinear",
    "reflection_pad1d_backward": "nn.ReflectionPad1d",
    "reflection_pad2d_backward": "nn.ReflectionPad2d",
    "reflection_pad3d_backward": "nn.ReflectionPad3d",
    "nll_loss2d_forward": "nn.NLLLoss (spatial)",
    "_ctc_loss_backward": "nn.CTCLoss",
    "_embedding_bag_backward": "nn.EmbeddingBag (max)",
    "put_": "Tensor.put_",
    "put": "Tensor.put",
    "histc": "torch.histc",
    "bincount": "torch.bincount (weights)",
    "median": "torch.median (indices)",
    "nanmedian": "torch.nanmedian (indices)",
    "grid_sampler_2d_backward": "F.grid_sample",
    "grid_sampler_3d_backward": "F.grid_sample",
    "scatter_reduce": "Tensor.scatter_reduce (prod)",
}


class OpRecorder(TorchDispatchMode):
    """Records the name of every aten op dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.add(func._overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def refused_ops(model: nn.Module, images: torch.Tensor, autocast: bool = False) -> dict[str, str]:
    """The ops of one forward (with MixUp-style soft targets) and backward that deterministic CUDA refuses."""
    model.train()
    targets = torch.full((len(images), 10), 0.1)
    recorder = OpRecorder()
    with recorder, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(images)
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=0.2)
        loss = loss + F.cross_entropy(logits.float(), targets.argmax(1), label_smoothing=0.2)
    with recorder:
        loss.backward()
    return {op: RAISES_ON_CUDA[op] for op in recorder.ops if op in RAISES_ON_CUDA}


SLOW = {"densenet121", "googlenet", "resnet34", "resnet50"}  # the deepest: many ops, each recorded in Python


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in zoo.list_models()]
)
def test_zoo_backbones_use_no_op_that_deterministic_cuda_refuses(name: str) -> None:
    image_size = 96 if name == "alexnet" else 32  # alexnet needs 65x65 at least
    torch.manual_seed(0)
    model = zoo.create_model(name, num_classes=10, in_channels=3, image_size=image_size)
    assert refused_ops(model, torch.randn(2, 3, image_size, image_size)) == {}


@pytest.mark.parametrize("config", ["fast.yaml", "fast94_lookahead.yaml", "fast94.yaml"])
def test_fast_recipes_use_no_op_that_deterministic_cuda_refuses(config: str) -> None:
    model_config = yaml.safe_load((CONFIGS / config).read_text())["model"]
    cls = getattr(zoo, model_config["class_path"].rsplit(".", 1)[1])
    torch.manual_seed(0)
    model = cls(**model_config["init_args"])  # channels_last, TTA and lookahead as the recipe has them
    assert refused_ops(model, torch.randn(2, 3, 32, 32), autocast=True) == {}
    model.eval()
    with OpRecorder() as recorder, torch.no_grad():
        model.evaluation_logits(torch.randn(2, 3, 32, 32))  # TTA's reflect padding has no backward: allowed
    assert recorder.ops


def test_the_audit_sees_adaptive_max_pool_and_global_max_pool_matches_its_forward() -> None:
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    old_head = nn.Sequential(nn.Conv2d(8, 8, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    assert refused_ops(old_head, torch.randn(4, 8, 5, 5)) == {"adaptive_max_pool2d_backward": "nn.AdaptiveMaxPool2d"}
    assert torch.equal(GlobalMaxPool()(x), nn.AdaptiveMaxPool2d(1)(x))
    (grad,) = torch.autograd.grad(GlobalMaxPool()(x).sum(), x)
    (expected,) = torch.autograd.grad(nn.AdaptiveMaxPool2d(1)(x).sum(), x)
    assert torch.equal(grad, expected)  # no ties in random floats: the same gradient
