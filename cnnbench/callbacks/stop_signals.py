"""Stop signals (SIGTERM, SLURM's requeue signal) that every rank of a run acts on at the same training step.

A signal handler runs between any two Python bytecodes, so it must not talk to the other ranks: Lightning's
SIGTERM handler broadcasts from inside the handler, and that extra collective pairs with whatever collective the
other ranks are in (a metric sync, the checkpoint's barrier): with NCCL's queued collectives, a hang or garbage.
Here the handler only records the signal. At each training batch end every rank contributes its flags to one
all-reduce (max) on a CPU (gloo) process group of its own, started without waiting; the next batch end reads the
result. All ranks thus act at the same step (one step after the first rank saw the signal) and the agreement
costs no host-device sync on GPUs (the flags never touch the device, and the collective overlaps a whole step).
"""

from __future__ import annotations

import signal
from types import FrameType

import torch
import torch.distributed as dist
from lightning.pytorch import Trainer

SIGTERM, REQUEUE = 0, 1  # the flags' positions


class SignalFlags:
    """Records SIGTERM (and the SLURM requeue signal, when given) and says which of them all ranks agree on.

    The owner calls ``install`` once Lightning has installed its handlers, ``start`` on every rank before the first
    training batch, ``agree`` at every training batch end, ``clear`` once it acted on a flag, ``finish`` at the end.
    """

    def __init__(self) -> None:
        self.local = [False, False]  # seen by this process
        self.agreed = [False, False]  # seen by some rank, known to all (sticky until ``clear``)
        self._group: dist.ProcessGroup | None = None
        self._work: dist.Work | None = None
        self._buffer: torch.Tensor | None = None

    def install(self, requeue_signal: int | None = None) -> None:
        """Replace the handlers (Lightning's, once it installed them); Lightning restores the earlier ones at its
        teardown."""
        if signal.getsignal(signal.SIGTERM) != self._on_sigterm:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        if requeue_signal is not None and signal.getsignal(requeue_signal) != self._on_requeue:
            signal.signal(requeue_signal, self._on_requeue)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.local[SIGTERM] = True

    def _on_requeue(self, signum: int, frame: FrameType | None) -> None:
        self.local[REQUEUE] = True

    def start(self, trainer: Trainer) -> None:
        """Called by every rank at the same point before training: the agreement's own process group."""
        self._work = None
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            self._group = dist.new_group(backend="gloo")  # CPU tensors, whatever the training's backend

    def agree(self) -> list[bool]:
        """Every rank calls this at the same batch ends: the flags some rank had recorded by the previous call.

        With one process, the local flags at once.
        """
        if self._group is None:
            self._merge(self.local)
            return self.agreed
        if self._work is not None:
            self._work.wait()  # started a step ago: done, unless another rank lags behind (then it waits for it)
            assert self._buffer is not None
            self._merge([bool(x) for x in self._buffer.tolist()])
        self._buffer = torch.tensor(self.local, dtype=torch.int32)
        self._work = dist.all_reduce(self._buffer, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
        return self.agreed

    def _merge(self, seen: list[bool]) -> None:
        for i, flag in enumerate(seen):
            if flag:  # agreed on: a rank's own record of the same signal must not count again once acted upon
                self.agreed[i], self.local[i] = True, False

    def clear(self, index: int) -> None:
        """The flag was acted upon (by every rank, at the same step)."""
        self.agreed[index] = False

    def finish(self) -> None:
        """Training ended on every rank alike: complete the last all-reduce (every rank started it)."""
        if self._work is not None:
            self._work.wait()
        self._work = None
