"""Checkpoint files that survive a kill at any moment, including in the middle of their own write.

Lightning's TorchCheckpointIO serializes to memory, writes the bytes to a temporary file made by
``tempfile.mkstemp`` (in the system temp folder) and moves it over the target. When that folder is on another
file system the move is a copy, so a kill during it leaves a truncated checkpoint; nothing is fsynced either,
so a power loss can leave an empty file. Here the temporary file sits beside the target, is flushed and
fsynced, and replaces the target with ``os.replace`` (atomic on POSIX and Windows), then the folder is fsynced.
A reader therefore sees the old complete file or the new complete file, never a mix.
"""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from cnnbench.errors import CheckpointError

# Fault injection for tests: sleep this many seconds halfway through writing each checkpoint file.
WRITE_DELAY_ENV = "CNNBENCH_CHECKPOINT_WRITE_DELAY"


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # folders cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either its previous content or ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    delay = float(os.environ.get(WRITE_DELAY_ENV, 0))
    try:
        with open(tmp, "wb") as f:
            f.write(data[: len(data) // 2])
            if delay:
                f.flush()
                time.sleep(delay)
            f.write(data[len(data) // 2 :])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        kept = "the previous version is kept" if path.exists() else "no earlier version existed"
        if exc.errno == errno.ENOSPC:
            raise CheckpointError(
                f"no space left on the device while saving {path} ({len(data) / 2**20:.0f} MiB); {kept}. "
                "Free some space, then resume with --ckpt_path auto."
            ) from exc
        raise CheckpointError(f"could not save {path}: {exc.strerror or exc}; {kept}.") from exc
    _fsync_dir(path.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint format, written atomically beside the target (see the module docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(buffer.getvalue(), Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_file(Path(path), map_location=map_location, weights_only=weights_only)


def load_checkpoint_file(
    path: Path, map_location: Any = "cpu", weights_only: bool | None = None, mmap: bool = False
) -> dict[str, Any]:
    """``torch.load`` with one clear error for a missing, truncated or foreign file.

    ``mmap=True`` maps the tensors instead of reading them: for a caller that only needs the metadata.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only, mmap=mmap)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError... for damaged files
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}): it is "
            "truncated or corrupt. Use another checkpoint of the run (last.ckpt or a best-*.ckpt in the same folder)."
        ) from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict in it).")
    return checkpoint
