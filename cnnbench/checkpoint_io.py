"""Checkpoint files that survive a kill at any moment, including in the middle of their own write.

Lightning's TorchCheckpointIO serializes to memory, writes the bytes to a temporary file made by
``tempfile.mkstemp`` (in the system temp folder) and moves it over the target. When that folder is on another
file system the move is a copy, so a kill during it leaves a truncated checkpoint; nothing is fsynced either,
so a power loss can leave an empty file. Here the temporary file sits beside the target, is flushed and
fsynced, and replaces the target with ``os.replace`` (atomic on POSIX and Windows), then the folder is fsynced.
A reader therefore sees the old complete file or the new complete file, never a mix.

Every checkpoint cnnbench opens is read with ``torch.load(weights_only=True)``: tensors and plain data only,
so a crafted file cannot run code when it is unpickled. A file that needs more is refused unless the user
trusts it (``allow_unsafe_checkpoints(True)`` or ``CNNBENCH_TRUST_CHECKPOINTS=1``). Tensors are always loaded
onto the CPU: a checkpoint written on a GPU then opens on a machine without one, and under DDP no rank piles
its copy onto ``cuda:0``; Lightning moves the state to each rank's device afterwards.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from cnnbench.errors import CheckpointError, UntrustedCheckpointError

# Set to 1 to load checkpoints with full pickle (only for files from a trusted source).
TRUST_ENV = "CNNBENCH_TRUST_CHECKPOINTS"

_unsafe_allowed = False


def allow_unsafe_checkpoints(allowed: bool = True) -> None:
    """Let every checkpoint loader of this process fall back to full pickle (``torch.load(weights_only=False)``).

    Only for checkpoints from a trusted source: unpickling a crafted file runs arbitrary code.
    """
    global _unsafe_allowed
    _unsafe_allowed = allowed


def unsafe_checkpoints_allowed() -> bool:
    """Whether checkpoints may be loaded with full pickle (``allow_unsafe_checkpoints`` or the environment)."""
    return _unsafe_allowed or os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


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
    try:
        with open(tmp, "wb") as f:
            f.write(data)
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
        # Onto the CPU whatever the caller asks (Lightning asks for nothing): see the module docstring.
        return load_checkpoint_file(Path(path), weights_only=weights_only)


def load_checkpoint_file(
    path: Path, map_location: Any = "cpu", weights_only: bool | None = None, mmap: bool = False
) -> dict[str, Any]:
    """``torch.load`` with one clear error for a missing, truncated, untrusted or foreign file.

    The file is read with ``weights_only=True``; a file that needs more is read again with full pickle only when
    the user trusts checkpoints (``allow_unsafe_checkpoints``, ``$CNNBENCH_TRUST_CHECKPOINTS``), whatever the
    caller's ``weights_only`` (kept for the callers' signatures: the trust switch decides, in one place).
    ``mmap=True`` maps the tensors instead of reading them: for a caller that only needs the metadata.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    mmap = mmap and zipfile.is_zipfile(path)  # only torch.save's zip format can be mapped
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError... for damaged files
        error = _unreadable(path, exc)
        if not (isinstance(error, UntrustedCheckpointError) and unsafe_checkpoints_allowed()):
            raise error from exc
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
        except Exception as unsafe_exc:
            raise _unreadable(path, unsafe_exc) from unsafe_exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict in it).")
    return checkpoint


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """The error to report for a checkpoint ``torch.load`` failed on: untrusted content, damage, or the cause."""
    first_line = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ''}"
    if isinstance(exc, pickle.UnpicklingError):
        objects = _objects_beyond_plain_data(path)
        if objects:
            shown = ", ".join(objects[:3]) + (", ..." if len(objects) > 3 else "")
            return UntrustedCheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data ({shown}); loading it could "
                f"run code, so it is refused. If you trust its source, set {TRUST_ENV}=1 to load it with full pickle."
            )
    if _damaged(path):
        return CheckpointError(
            f"checkpoint {path} cannot be read ({first_line}): it is truncated or corrupt. "
            "Use another checkpoint of the run (last.ckpt or a best-*.ckpt in the same folder)."
        )
    return CheckpointError(f"checkpoint {path} cannot be read ({first_line}).")


def _objects_beyond_plain_data(path: Path) -> list[str]:
    """The classes and functions the checkpoint's pickle names beyond what ``weights_only`` allows, read statically.

    Empty when the pickle is damaged (it is then reported as such) or names nothing beyond the allowed.
    """
    try:
        if zipfile.is_zipfile(path):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        with open(path, "rb") as f:  # a bare pickle (or a pre-1.6 torch.save): list every global it names
            return sorted(_pickle_globals(f.read()))
    except Exception:  # a damaged zip or pickle: it cannot be told what it holds
        return []


def _pickle_globals(data: bytes) -> set[str]:
    """``module.name`` of every GLOBAL/STACK_GLOBAL of the first pickle in ``data``; raises if it is damaged."""
    found, strings = set(), []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "INST"):
            found.add(str(arg).replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return found


def _damaged(path: Path) -> bool:
    """Whether the file is cut short or its bytes are damaged (torch.save writes zip files with CRC-32s)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is not None
        with open(path, "rb") as f:
            _pickle_globals(f.read())
    except Exception:  # unreadable structure: cut short or overwritten
        return True
    return False
