"""Run folders: ``<root>/<run_name>/<run_id>/`` holds one run's config, metrics and checkpoints.

Every new run gets a fresh, time-sorted id, so two runs of the same config never collide; a resumed
run continues in the folder of the checkpoint it resumes from. This module knows the layout and the
checkpoint names; it imports no models, data or callbacks, so reading runs stays cheap. Which checkpoint
``--ckpt_path`` names, and whether it fits the run, is ``cnnbench.resume``'s.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.errors import CnnbenchError
from cnnbench.launch import HPC_PATTERN, shared_run_id

DEFAULT_ROOT = "checkpoints"  # --trainer.default_root_dir unless given
CHECKPOINT_DIR = "checkpoints"  # the checkpoints' folder inside a run folder
LAST_NAME = "last.ckpt"
BEST_FILENAME = "best-epoch{epoch:03d}-acc{val/acc:.4f}"  # ModelCheckpoint's template for the best checkpoints
BEST_PATTERN = re.compile(r"^best-epoch(\d+)-acc(\d+(?:\.\d+)?)\.ckpt$")
_RUN_ID_ENV = "CNNBENCH_RUN_ID"
_SLURM_CLAIM = ".slurm-claim.json"


@dataclass
class CheckpointOptions:
    """Checkpointing of ``fit``.

    Args:
        save_top_k: How many of the best checkpoints (by ``val/acc``) to keep.
        last_every_n_steps: Also refresh ``last.ckpt`` every this many optimizer steps (0: epoch ends only).
    """

    save_top_k: int = 1
    last_every_n_steps: int = 500


def run_name(dataset: str, model: str, given: str | None = None) -> str:
    """The run group folder: ``--run_name`` if given, else ``<dataset>-<model>``."""
    return given or f"{dataset}-{model}"


def dataset_name(data: Mapping[str, Any]) -> str:
    """The dataset of a data config: its ``dataset`` option, or the class name of a data module without one."""
    options = (data.get("init_args") or {}) if "class_path" in data else data
    return str(options.get("dataset") or str(data.get("class_path")).rsplit(".", 1)[-1])


def is_global_zero() -> bool:
    """Whether this process is the first of its run, from the launcher's environment (before any process group)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def new_run_id(group_dir: Path) -> str:
    """A sortable, unique id; shared by every process of one run.

    Processes that Lightning's DDP launcher starts inherit the id of rank 0 through the environment; those
    torchrun starts read it from torchrun's store.
    Under SLURM every rank of one job step derives the same id from the job and step ids, and a requeued
    job, whose steps count from 0 again, continues the folders of its earlier incarnation in order; a
    second ``fit`` in the same allocation gets a folder of its own.
    """
    if os.environ.get("LOCAL_RANK", "0") != "0" and _RUN_ID_ENV in os.environ:
        return os.environ[_RUN_ID_ENV]
    if "SLURM_JOB_ID" in os.environ:
        run_id = _slurm_run_id(group_dir)
    else:  # under torchrun, every rank takes rank 0's
        run_id = shared_run_id(lambda: time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2))
    os.environ[_RUN_ID_ENV] = run_id
    return run_id


def _slurm_run_id(group_dir: Path) -> str:
    job = os.environ["SLURM_JOB_ID"]
    step = os.environ.get("SLURM_STEP_ID", "")
    if step.isdigit():  # launched with srun: every rank of the step agrees without talking to the others
        return f"slurm-{job}-step{step}"
    # The batch step (one process, plus any Lightning starts itself): fits claim the job's folders in order.
    # A folder claimed by an earlier incarnation of a requeued job is this incarnation's to continue.
    restart = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    for k in range(1, 10_000):
        run_id = f"slurm-{job}" if k == 1 else f"slurm-{job}-{k}"
        claim = group_dir / run_id / _SLURM_CLAIM
        if claim.is_file() and json.loads(claim.read_text()).get("restart", -1) >= restart:
            continue  # an earlier fit of this incarnation runs (or ran) there
        if is_global_zero():
            claim.parent.mkdir(parents=True, exist_ok=True)
            claim.write_text(json.dumps({"restart": restart}) + "\n")
        return run_id
    raise CnnbenchError(f"too many runs of SLURM job {job} under {group_dir}")


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to, or None for a checkpoint kept elsewhere."""
    folder = checkpoint.resolve().parent
    if HPC_PATTERN.match(checkpoint.name) and (folder / CHECKPOINT_DIR).is_dir():  # Lightning's, in the run folder
        return folder
    return folder.parent if folder.name == CHECKPOINT_DIR else None


def find_best(checkpoint_dir: Path) -> Path | None:
    """The best checkpoint in ``checkpoint_dir`` by the accuracy its name records (latest epoch on ties)."""
    scored = [
        (float(m[2]), int(m[1]), p) for p in checkpoint_dir.glob("best-*.ckpt") if (m := BEST_PATTERN.match(p.name))
    ]
    return max(scored)[2] if scored else None


def best_or_last(run_dir: Path) -> Path | None:
    """A run's best checkpoint, or its ``last.ckpt`` when it kept no best one; None if it has neither."""
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    found = find_best(checkpoint_dir) or checkpoint_dir / LAST_NAME
    return found if found.is_file() else None


def run_folders(
    group_dir: Path, subcommand: str, checkpoint: Path | None, run_id: str | None = None
) -> tuple[Path, Path]:
    """(run folder, log folder) of a command.

    ``fit`` logs into a new run folder (``run_id``'s if already chosen), or into the folder of the checkpoint it
    resumes; the other subcommands log into ``<subcommand>-<time>/`` inside the run they evaluate.
    """
    run_dir = (run_dir_of(checkpoint) if checkpoint else None) or group_dir / (run_id or new_run_id(group_dir))
    log_dir = run_dir if subcommand == "fit" else run_dir / f"{subcommand}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_dir, log_dir


def check_writable(folder: Path) -> None:
    """Fail before training, not at the first checkpoint, when the run folder cannot be written.

    Only the first process creates the folder: the others of a run started by torchrun or srun would
    otherwise leave empty folders of ids they never use.
    """
    if not is_global_zero():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CnnbenchError(
            f"cannot write the run folder {folder} ({exc.strerror or exc}); pick a writable --trainer.default_root_dir."
        ) from exc
