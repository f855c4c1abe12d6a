"""``environment.json``: which code, packages, devices, data and network a run used, so runs can be compared fairly
later.

``cnnbench report`` reads it to refuse comparing runs trained or evaluated on different data, and for the network's
size and FLOPs as it was built (its widths, not the registry's default).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from cnnbench.loggers import log_environment

PACKAGES = ("torch", "lightning", "torchmetrics", "cnnbench")


def git_state(folder: Path) -> dict[str, Any]:
    """Commit and dirty flag of the git repository ``folder`` is in; None for both outside one (or without git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def file_checksum(paths: list[Path]) -> str:
    """sha256 over the files' names and bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def data_record(data: Any) -> dict[str, Any]:
    """Dataset, data files' checksum and the validation split's checksum of a cnnbench data module.

    A data module without a dataset spec (a user's own) records its class only: nothing can be checked for it.
    """
    spec = getattr(data, "spec", None)
    record: dict[str, Any] = {"class": f"{type(data).__module__}.{type(data).__qualname__}"}
    if spec is None:
        return record
    folder = Path(data.data_dir) / spec.folder
    files = [folder / f if (folder / f).exists() else folder / f"{f}.gz" for f in spec.files]
    hp = data.hparams
    record.update(
        dataset=spec.key,
        files_sha256=file_checksum([f for f in files if f.exists()]),
        val_size=hp.get("val_size"),
        split_seed=hp.get("split_seed"),
        subset=hp.get("subset"),
    )
    train = getattr(data, "splits", {}).get("train")
    if train is not None:
        record["train_images"] = len(train[1])  # per epoch: what the training FLOPs of ``report`` count
    for split in ("val", "test"):  # what the evaluation FLOPs of ``report`` count
        if split in getattr(data, "splits", {}):
            record[f"{split}_images"] = len(data.splits[split][1])
    val = getattr(data, "splits", {}).get("val")
    if val is not None:
        # The validation images and labels themselves: the same indices into the same files give the same bytes.
        digest = hashlib.sha256(val[0].contiguous().numpy().tobytes())
        digest.update(val[1].contiguous().numpy().tobytes())
        record["val_split_sha256"] = digest.hexdigest()
    return record


def environment(trainer: Trainer) -> dict[str, Any]:
    """The record of ``environment.json`` for a run of ``trainer``."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    root = trainer.strategy.root_device
    if root.type == "cuda":
        device_name = torch.cuda.get_device_name(root)
    else:
        device_name = platform.processor() or platform.machine()
    seed = os.environ.get("PL_GLOBAL_SEED")
    return {
        "git": git_state(Path.cwd()),
        "versions": versions,
        "platform": platform.platform(),
        "command": sys.argv,
        "devices": {
            "accelerator": root.type,
            "name": device_name,
            "count": trainer.num_devices,
            "nodes": trainer.num_nodes,
            "world_size": trainer.world_size,
        },
        "precision": str(trainer.precision),
        "seed": int(seed) if seed is not None else None,
        "data": data_record(trainer.datamodule) if trainer.datamodule is not None else None,
    }


class EnvironmentRecord(Callback):
    """Writes ``environment.json`` into the run folder (rank zero); a resumed run keeps it and adds
    ``environment.resume-1.json``, ``-2``, ... as ``config.yaml`` does. Loggers other than CSV get it too."""

    def __init__(self, run_dir: Path, model_size: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.model_size = model_size  # the network as built: name, params, forward MFLOPs per image

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The data module's setup ran before the callbacks' (Lightning's order): its validation split exists.
        if stage != "fit" or not trainer.is_global_zero:
            return
        record = environment(trainer)
        if self.model_size:
            record["model"] = self.model_size
        self.run_dir.mkdir(parents=True, exist_ok=True)
        name, k = "environment.json", 0
        while (self.run_dir / name).exists():
            k += 1
            name = f"environment.resume-{k}.json"
        (self.run_dir / name).write_text(json.dumps(record, indent=2) + "\n")
        log_environment(trainer.loggers, record)
