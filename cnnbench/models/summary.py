"""Size and cost of the registered models: parameter count and forward FLOPs per image."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnbench.data.datasets import DATASETS
from cnnbench.errors import CnnbenchError
from cnnbench.models.registry import create_model, list_models, model_spec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    in_channels: int
    image_size: int
    params: int
    mflops: float  # forward pass, one image; a multiply-add counts as 2 FLOPs


def input_shape(name: str, dataset: str) -> tuple[int, int]:
    """(channels, side) the model ``name`` sees when trained on ``dataset`` with its usual options: a model
    registered with an ``image_size`` is built for it (the DataModule resizes: ``--data.image_size``)."""
    spec = DATASETS[dataset]
    return spec.channels, model_spec(name).image_size or spec.image_size


def describe(name: str, in_channels: int, image_size: int, num_classes: int = 10) -> ModelInfo:
    """Parameter count and forward FLOPs of the registered model ``name``, built with its default options."""
    model = create_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    return measure(model, name, in_channels, image_size)


def measure(model: nn.Module, name: str, in_channels: int, image_size: int) -> ModelInfo:
    """Parameter count and forward FLOPs of the network ``model`` as built (its widths and other options) for one
    ``in_channels`` x ``image_size``^2 image. The forward runs in eval mode without gradients: no state changes.

    FLOPs are what ``torch.utils.flop_counter`` counts: convolutions and matrix products (2 per multiply-add);
    normalization, activations and pooling are not counted.
    """
    weight = next(model.parameters(), None)
    device, dtype = (weight.device, weight.dtype) if weight is not None else (torch.device("cpu"), torch.float32)
    training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with counter, torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size, device=device, dtype=dtype))
    finally:
        model.train(training)
    params = sum(p.numel() for p in model.parameters())
    return ModelInfo(name, in_channels, image_size, params, counter.get_total_flops() / 1e6)


def model_table(dataset: str, names: list[str] | None = None) -> str:
    """A Markdown table of every model (or ``names``) at ``dataset``'s input shape and number of classes."""
    num_classes = len(DATASETS[dataset].classes)
    lines = ["| model | input | params | MFLOPs |", "|---|---|---:|---:|"]
    for name in names or list_models():
        info = describe(name, *input_shape(name, dataset), num_classes=num_classes)
        shape = f"{info.in_channels}x{info.image_size}x{info.image_size}"
        lines.append(f"| {name} | {shape} | {info.params:,} | {info.mflops:,.1f} |")
    return "\n".join(lines)


def models_command(args: list[str]) -> None:
    """``cnnbench models``: the model zoo with parameter counts and FLOPs at a dataset's input shape."""
    parser = argparse.ArgumentParser(prog="cnnbench models", description=models_command.__doc__)
    parser.add_argument("names", nargs="*", help="Models to show (default: all).")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="cifar10", help="Input shape to count for.")
    options = parser.parse_args(args)
    unknown = sorted(set(options.names) - set(list_models()))
    if unknown:
        raise CnnbenchError(f"unknown model(s) {', '.join(unknown)}; run 'cnnbench models' to list them")
    print(model_table(options.dataset, options.names or None))
