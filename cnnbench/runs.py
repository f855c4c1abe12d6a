"""Run folders: ``<root>/<run_name>/<run_id>/`` holds one run's config, metrics and checkpoints.

Every new run gets a fresh, time-sorted id, so two runs of the same config never collide; a resumed
run continues in the folder of the checkpoint it resumes from.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from cnnbench.callbacks.checkpoints import LAST_NAME, find_best
from cnnbench.errors import CheckpointNotFoundError

CHECKPOINT_DIR = "checkpoints"
_RUN_ID_ENV = "CNNBENCH_RUN_ID"


def new_run_id() -> str:
    """A sortable, unique id; shared by every process of one run.

    Processes that Lightning's DDP launcher starts inherit the id of rank 0 through the environment;
    under SLURM every rank (and a requeued job) derives the same id from the job id.
    """
    if os.environ.get("LOCAL_RANK", "0") != "0" and _RUN_ID_ENV in os.environ:
        return os.environ[_RUN_ID_ENV]
    if "SLURM_JOB_ID" in os.environ:
        return f"slurm-{os.environ['SLURM_JOB_ID']}"
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    os.environ[_RUN_ID_ENV] = run_id
    return run_id


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint belongs to, or None for a checkpoint kept elsewhere."""
    folder = checkpoint.resolve().parent
    return folder.parent if folder.name == CHECKPOINT_DIR else None


def resolve_checkpoint(ckpt_path: str | None, group_dir: Path) -> Path | None:
    """Turn ``last``/``best``/a path into an existing checkpoint file, or raise a clear error.

    ``last`` and ``best`` pick, among the runs in ``group_dir`` (``<root>/<run_name>``), the most
    recently written checkpoint of that kind.
    """
    if ckpt_path is None:
        return None
    if ckpt_path in ("last", "best"):
        ckpt_dirs = group_dir.glob(f"*/{CHECKPOINT_DIR}")
        found = [(ckpt_dir / LAST_NAME) if ckpt_path == "last" else find_best(ckpt_dir) for ckpt_dir in ckpt_dirs]
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
