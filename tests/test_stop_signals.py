"""Stop signals (SIGTERM, SLURM's requeue signal): recorded by the handler, acted on by all ranks at one step."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from cnnbench.callbacks.stop_signals import REQUEUE, SIGTERM, SignalFlags

STEPS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SCENARIOS = [{0: 3}, {1: 3}, {0: 2, 1: 5}, {0: 7, 1: 7}]  # rank -> the step it records a SIGTERM at


def agree_over_steps(rank: int, port: int, out: Path) -> None:
    """One of 2 gloo ranks: per scenario, record a signal at the rank's step (if any); note the agreed steps."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    lines = []
    for signal_steps in SCENARIOS:
        flags = SignalFlags()
        flags.start(SimpleNamespace(world_size=2))  # type: ignore[arg-type]
        agreed_at = []
        for step in range(1, STEPS + 1):
            if signal_steps.get(rank) == step:
                flags._on_sigterm(signal.SIGTERM, None)  # what the handler does, at a known moment
            if flags.agree()[SIGTERM]:
                agreed_at.append(step)
                flags.clear(SIGTERM)
        flags.finish()
        lines.append(",".join(map(str, agreed_at)))
    (out / f"rank{rank}").write_text("\n".join(lines))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_act_on_a_signal_at_the_same_step(tmp_path: Path) -> None:
    mp.start_processes(agree_over_steps, args=(free_port(), tmp_path), nprocs=2, start_method="spawn", join=True)
    seen = [(tmp_path / f"rank{r}").read_text().split("\n") for r in (0, 1)]
    # One step after the first rank recorded it, on both ranks, once (the other rank's record of the same signal
    # merges with it, unless it came after the agreement: then it is a new signal).
    expected = []
    for signal_steps in SCENARIOS:
        first = min(signal_steps.values())
        steps = [first + 1] + sorted({s + 1 for s in signal_steps.values() if s + 1 > first + 1})
        expected.append(",".join(map(str, steps)))
    assert seen == [expected, expected]


def test_one_process_acts_at_once_and_the_handler_only_records(tmp_path: Path) -> None:
    flags = SignalFlags()
    flags.start(SimpleNamespace(world_size=1))  # type: ignore[arg-type]
    previous = signal.getsignal(signal.SIGTERM)
    try:
        flags.install(signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here; it does not stop the process
        assert flags.local == [False, True]
        assert flags.agree() == [False, True]
        flags.clear(REQUEUE)
        assert flags.agree() == [False, False]
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
