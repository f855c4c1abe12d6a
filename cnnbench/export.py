"""``cnnbench export CKPT``: a checkpoint's network as a ``torch.export`` program and ONNX (or TorchScript on
request), ready to load without cnnbench.

The exported network takes normalized images (N, C, H, W, any batch size N) and returns logits; the JSON written
beside it holds what preprocessing needs: class names, input shape, mean and std. ONNX needs the ``export`` extra
(``onnx``, ``onnxscript``; ``onnxruntime`` to run it). TorchScript, deprecated by torch, is written only when asked.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def _check_onnx_installed() -> None:
    """Stop before loading anything when the ONNX exporter's packages are missing."""
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise CnnbenchError("--format onnx needs the export extra: pip install 'cnnbench[export]'")


def export_command(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cnnbench export", description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("exported"))
    help_format = f"Repeatable (default: {' and '.join(DEFAULT_FORMATS)}; torchscript only when asked)."
    parser.add_argument("--format", choices=FORMATS, action="append", help=help_format)
    options = parser.parse_args(args)
    for path in export_checkpoint(options.checkpoint, options.out, tuple(options.format or DEFAULT_FORMATS)):
        print(path)
