"""``cnnbench export CKPT``: a checkpoint's network as a ``torch.export`` program and ONNX (or TorchScript on
request), ready to load without cnnbench.

The exported network takes normalized images (N, C, H, W, any batch size N) and returns logits; the JSON written
beside it holds what preprocessing needs: class names, input shape, mean and std. ONNX needs the ``export`` extra
(``onnx``, ``onnxscript``; ``onnxruntime`` to run it): by default it is written when those are installed, and a
line says how to add them when not. TorchScript, deprecated by torch, is written only when asked.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import torch

from cnnbench.errors import CnnbenchError
from cnnbench.models.checkpoint import load_classifier

FORMATS = ("export", "onnx", "torchscript")
DEFAULT_FORMATS = ("export", "onnx")


def export_checkpoint(path: Path, out_dir: Path, formats: tuple[str, ...] = DEFAULT_FORMATS) -> list[Path]:
    """Write the checkpoint's network in each of ``formats`` and the preprocessing JSON; return the files written."""
    if "onnx" in formats:
        _check_onnx_installed()
    model, checkpoint = load_classifier(path)
    hp = model.hparams
    example = torch.zeros(2, hp.in_channels, hp.image_size, hp.image_size)
    network = model.backbone
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{model.model_name}-{path.stem}"
    written = []
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        if "export" in formats:
            program = torch.export.export(network, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, f"{stem}.pt2")
            written.append(Path(f"{stem}.pt2"))
        if "onnx" in formats:
            # One self-contained file (the zoo's largest network is far below protobuf's 2 GB limit).
            torch.onnx.export(
                network, (example,), f"{stem}.onnx", input_names=["images"], output_names=["logits"],
                dynamic_shapes=({0: batch},), external_data=False, verbose=False,
            )  # fmt: skip
            written.append(Path(f"{stem}.onnx"))
        if "torchscript" in formats:
            with warnings.catch_warnings():  # torch deprecates TorchScript: asked for by name, it is not news here
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
                torch.jit.save(torch.jit.trace(network, example), f"{stem}.torchscript.pt")
            written.append(Path(f"{stem}.torchscript.pt"))
    data = next((v for k, v in checkpoint.items() if isinstance(v, dict) and "mean" in v and "classes" in v), {})
    meta = {
        "model": model.model_name,
        "input_shape": list(example.shape[1:]),
        "classes": data.get("classes"),
        "mean": data.get("mean"),
        "std": data.get("std"),
        "input": "float images scaled to [0, 1], then (x - mean) / std per channel",
        "checkpoint": str(path),
    }
    Path(f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return [*written, Path(f"{stem}.json")]


def onnx_installed() -> bool:
    """Whether the ONNX exporter's packages (the ``export`` extra) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript"))


def _check_onnx_installed() -> None:
    """Stop before loading anything when the ONNX exporter's packages are missing."""
    if not onnx_installed():
        raise CnnbenchError("--format onnx needs the export extra: pip install 'cnnbench[export]'")


def export_command(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cnnbench export", description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("exported"))
    help_format = f"Repeatable (default: {' and '.join(DEFAULT_FORMATS)}; torchscript only when asked)."
    parser.add_argument("--format", choices=FORMATS, action="append", help=help_format)
    options = parser.parse_args(args)
    formats = tuple(options.format or DEFAULT_FORMATS)
    if not options.format and not onnx_installed():  # the default writes what this install can
        formats = tuple(f for f in formats if f != "onnx")
        print("cnnbench export: no ONNX file: its packages are not installed (pip install 'cnnbench[export]' adds "
              "them, then export again or pass --format onnx)", file=sys.stderr)  # fmt: skip
    for path in export_checkpoint(options.checkpoint, options.out, formats):
        print(path)
