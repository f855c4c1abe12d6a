"""One writer per run folder: ``fit`` holds an OS lock on ``<run>/run.lock`` for its lifetime.

``flock`` locks belong to the open file, so the kernel drops one when its process ends however it ends (SIGKILL,
OOM, a node reboot): a killed run resumes without any clean-up. The file says who holds it (host and pid), which
the refusal names. Readers (``test``, ``report``, ``export``, ``predict``) never take it. Under DDP only the
global rank 0 process takes it: every rank of one run shares the folder.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO

from cnnbench.errors import CnnbenchError

LOCK_FILE = "run.lock"


class RunLockedError(CnnbenchError):
    """Another live process is writing this run folder."""


class RunLock:
    """The held lock of one run folder; ``release`` (or the process's end) frees it."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path, self._handle = path, handle

    def release(self) -> None:
        if self._handle.closed:
            return
        folder = self.path.parent
        # A fit that failed before writing anything leaves no folder behind (as before there was a lock): with no
        # checkpoint in it, no other fit can be resuming this run, so the file may go while still held.
        if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            self.path.unlink()
            folder.rmdir()
            if not any(folder.parent.iterdir()):
                folder.parent.rmdir()
        self._handle.close()  # closing the last descriptor drops the flock


def acquire(run_dir: Path) -> RunLock:
    """Lock ``run_dir`` for this process, or raise RunLockedError naming the holder; nothing else is written."""
    import fcntl  # POSIX only; imported here so that importing cnnbench stays possible elsewhere

    path = run_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 -- held open for the fit's lifetime; "a+" never truncates the holder's
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunLockedError(
            f"run {run_dir} is being written by {holder}; wait for it to end (or stop it), or start a new run "
            "without --ckpt_path. Two writers would interleave its checkpoints and metrics."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"host {socket.gethostname()} pid {os.getpid()}\n")
    handle.flush()
    return RunLock(path, handle)
