"""One writer per run folder: ``fit`` holds an OS lock on ``<run>/run.lock`` for its lifetime.

A POSIX record lock (``lockf``) belongs to the process that took it, so the kernel drops it when that process
ends however it ends (SIGKILL, OOM, a node reboot): a killed run resumes without any clean-up. (An ``flock``
would be shared with every process forked while it is held, such as data loader workers, which outlive a killed
fit by seconds and would refuse its resume.) The file says who holds it (host and pid), which
the refusal names. Readers (``test``, ``report``, ``export``, ``predict``) never take it. Under DDP only the
global rank 0 process takes it: every rank of one run shares the folder.
"""

from __future__ import annotations

import errno
import os
import socket
import time
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
        self._handle.close()  # closing it drops the lock (as would closing any descriptor of the file here)


def acquire(run_dir: Path) -> RunLock:
    """Lock ``run_dir`` for this process, or raise RunLockedError naming the holder; nothing else is written."""
    import fcntl  # POSIX only; imported here so that importing cnnbench stays possible elsewhere

    path = run_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 -- held open for the fit's lifetime; "a+" never truncates the holder's
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the whole file, whatever the position
    except OSError as held:
        if held.errno not in (errno.EACCES, errno.EAGAIN):
            raise
        holder = read_holder(handle)
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


def read_holder(handle: IO[str], patience: float = 2.0) -> str:
    """Who holds the lock, as the file says. A holder writes its line just after it locks, so for a moment the file
    may still name the previous, ended holder: re-read until it names a live process (or ``patience`` runs out)."""
    deadline = time.monotonic() + patience
    while True:
        handle.seek(0)
        holder = handle.read().strip()
        if _names_a_live_process(holder) or time.monotonic() > deadline:
            return holder or "another process"
        time.sleep(0.05)


def _names_a_live_process(holder: str) -> bool:
    words = holder.split()  # "host H pid P"
    if len(words) != 4 or not words[3].isdigit():
        return False
    if words[1] != socket.gethostname():
        return True  # another machine's process: not ours to check
    try:
        os.kill(int(words[3]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
