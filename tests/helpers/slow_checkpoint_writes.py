"""``python -m tests.helpers.slow_checkpoint_writes SECONDS ARGS...``: ``cnnbench ARGS...`` whose checkpoint writes
pause halfway through each file for SECONDS, so that a test can kill the run while a checkpoint is half written."""

from __future__ import annotations

import builtins
import sys
import time
from typing import Any

from cnnbench import checkpoint_io
from cnnbench.__main__ import main


class _PausingFile:
    """A file whose writes stop for a while halfway (flushed first: the half is on disk, as a crash leaves it)."""

    def __init__(self, file: Any, delay: float) -> None:
        self._file, self._delay = file, delay

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self._file.write(data[:half])
        self._file.flush()
        time.sleep(self._delay)
        return half + self._file.write(data[half:])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _PausingFile:
        self._file.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.__exit__(*exc)


def pausing_open(delay: float) -> Any:
    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 (the caller's with-block closes it)
        return _PausingFile(opened, delay) if "w" in mode else opened

    return open_


if __name__ == "__main__":
    # checkpoint_io's writes look ``open`` up in its module first: only they pause.
    checkpoint_io.open = pausing_open(float(sys.argv[1]))  # type: ignore[attr-defined]
    main(sys.argv[2:])
