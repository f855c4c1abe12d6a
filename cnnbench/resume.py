"""``--ckpt_path``: which checkpoint ``last``/``best``/a path names, and whether its weights fit the run.

A checkpoint's hyperparameters are read without loading its tensors; the model options it was trained with
replace the config's, except those that say how the new run runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnbench.checkpoint_io import load_checkpoint_file
from cnnbench.errors import CheckpointError, CheckpointNotFoundError
from cnnbench.runs import CHECKPOINT_DIR, LAST_NAME, find_best

# Model options a checkpoint does not impose on a new command: shapes (from the data), how the model runs, and how
# it is evaluated (test-time augmentation: `test --model.translate_tta false` compares a checkpoint without it).
RUN_CHOICES = frozenset({
    "num_classes", "in_channels", "image_size", "channels_last", "compile",
    "flip_tta", "translate_tta", "tta_uncertain_fraction", "tta_equal_weights",
})  # fmt: skip


def final_state(checkpoint_dir: Path) -> Path | None:
    """What ``best`` means in a run that trained without validation (``--data.val_size 0``): its last state."""
    config = checkpoint_dir.parent / "config.yaml"
    if not config.is_file():
        return None
    data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
    options = (data.get("init_args") or {}) if "class_path" in data else data
    return checkpoint_dir / LAST_NAME if options.get("val_size") == 0 else None


def resolve_checkpoint(ckpt_path: str | None, group_dir: Path) -> Path | None:
    """Turn ``last``/``best``/a path into an existing checkpoint file, or raise a clear error.

    ``last`` and ``best`` pick, among the runs in ``group_dir`` (``<root>/<run_name>``), the most
    recently written checkpoint of that kind.
    """
    if ckpt_path is None:
        return None
    if ckpt_path in ("last", "best"):
        checkpoint_dirs = group_dir.glob(f"*/{CHECKPOINT_DIR}")
        found = [(d / LAST_NAME) if ckpt_path == "last" else find_best(d) or final_state(d) for d in checkpoint_dirs]
        found = [path for path in found if path is not None and path.is_file()]
        if not found:
            raise CheckpointNotFoundError(
                f"--ckpt_path {ckpt_path}: no {ckpt_path} checkpoint in any run under {group_dir}. "
                "Check --trainer.default_root_dir and --run_name (or the config), "
                "or start a new run without --ckpt_path."
            )
        return max(found, key=lambda path: path.stat().st_mtime)
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"--ckpt_path {ckpt_path}: no such file.")
    return path


@dataclass(frozen=True)
class TrainedOn:
    """What a checkpoint's weights fit: a model on a dataset's inputs."""

    model: str
    dataset: str
    in_channels: int | None
    image_size: int | None

    @property
    def inputs(self) -> str:
        shape = f" ({self.in_channels}x{self.image_size}x{self.image_size} inputs)" if self.image_size else ""
        return f"{self.dataset}{shape}"


@dataclass(frozen=True)
class CheckpointHparams:
    """The hyperparameters a checkpoint records, read without loading its tensors."""

    class_path: str | None
    model: dict[str, Any]
    data: dict[str, Any]

    def trained_on(self, model: str, dataset: str) -> TrainedOn:
        """What the weights fit; ``dataset`` names a data module that records no ``dataset`` option of its own."""
        dataset = str(self.data.get("dataset", dataset))
        return TrainedOn(model, dataset, self.model.get("in_channels"), self.model.get("image_size"))

    def options_to_adopt(self, current: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The model options a run from this checkpoint takes over, and a line for each that differs from ``current``.

        The shape arguments come from the data module (and are checked against the checkpoint); how the model
        runs (memory layout, compilation) and is evaluated (TTA) is the new run's choice, not part of what was
        trained.
        """
        adopted = {k: v for k, v in self.model.items() if k not in RUN_CHOICES}
        changed = [
            f"{k}={v!r} (config: {current[k]!r})" for k, v in adopted.items() if k in current and current[k] != v
        ]
        return adopted, changed

    @classmethod
    def read(cls, path: Path) -> CheckpointHparams:
        checkpoint = load_checkpoint_file(path, weights_only=True, mmap=True)  # maps, does not read, the tensors
        hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k != "_instantiator"}
        class_path = hparams.pop("_class_path", None)
        return cls(class_path, hparams, dict(checkpoint.get("datamodule_hyper_parameters", {})))


def check_trained_on(path: Path, held: TrainedOn, wanted: TrainedOn) -> None:
    """Refuse a checkpoint whose weights do not fit this run's model and inputs, saying how to proceed."""
    if held != wanted:
        raise CheckpointError(
            f"{path} holds {held.model} trained on {held.inputs}, but this run builds {wanted.model} on "
            f"{wanted.inputs}. Use that run's config "
            f"(--model {held.model} --data.dataset {held.dataset} ...) or a checkpoint of this model."
        )
