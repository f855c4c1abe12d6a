"""A trained classifier back from its checkpoint, for ``cnnbench export`` and ``cnnbench report``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from cnnbench.checkpoint_io import load_checkpoint_file, unsafe_checkpoints_allowed
from cnnbench.classifier import ImageClassifier
from cnnbench.errors import CnnbenchError


def load_classifier(path: Path) -> tuple[ImageClassifier, dict[str, Any]]:
    """The LightningModule of a checkpoint (its class from the checkpoint), in eval mode, and the checkpoint.

    The checkpoint is read as tensors and plain data only (see ``cnnbench.checkpoint_io``). The backbone is
    never compiled, whatever the run used (``--model.compile``): export traces the plain network, and the
    report's figures are a few batches; a compiled run's checkpoint holds the same keys.
    """
    checkpoint = load_checkpoint_file(path)
    class_path = checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise CnnbenchError(f"{path} does not say which model it holds (no _class_path): not a cnnbench checkpoint")
    module, _, name = class_path.rpartition(".")
    model_class = getattr(importlib.import_module(module), name, None)
    if not (isinstance(model_class, type) and issubclass(model_class, ImageClassifier)):
        raise CnnbenchError(f"{path} names {class_path} as its model, which is no cnnbench model class")
    # Read again by Lightning, under the same rule: full pickle only where the user trusts checkpoints.
    model = model_class.load_from_checkpoint(
        path, map_location="cpu", weights_only=not unsafe_checkpoints_allowed(), compile=False
    )
    return model.eval(), checkpoint
