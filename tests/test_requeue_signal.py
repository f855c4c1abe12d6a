"""The SLURM requeue signal under DDP: ranks agree on it every few dozen steps, not with a collective every step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnbench.callbacks.checkpoints import REQUEUE_CHECK_STEPS, LatestCheckpoint


class CountingStrategy:
    """A strategy whose ``reduce_boolean_decision`` (the collective) counts its calls and the steps it ran at."""

    def __init__(self, trainer: SimpleNamespace) -> None:
        self.trainer, self.steps = trainer, []

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002 (Lightning's name)
        self.steps.append(self.trainer.global_step)
        return decision


@pytest.mark.parametrize("world_size", [2, 1])
def test_requeue_signal_is_agreed_on_every_n_steps_under_ddp(world_size: int, tmp_path: Path) -> None:
    trainer = SimpleNamespace(world_size=world_size, global_step=0)
    trainer.strategy = strategy = CountingStrategy(trainer)
    callback = LatestCheckpoint(tmp_path)
    handled: list[int] = []
    callback._requeue_handler = lambda: handled.append(trainer.global_step)
    signal_step, steps = REQUEUE_CHECK_STEPS + 5, 4 * REQUEUE_CHECK_STEPS
    for step in range(1, steps + 1):
        trainer.global_step = step
        if step == signal_step:
            callback._note_requeue_signal(10, None)
        callback._requeue_if_signalled(trainer)
    if world_size > 1:
        # One collective per REQUEUE_CHECK_STEPS steps, and the handler at the first agreement after the signal.
        assert strategy.steps == list(range(REQUEUE_CHECK_STEPS, steps + 1, REQUEUE_CHECK_STEPS))
        assert handled == [2 * REQUEUE_CHECK_STEPS]
    else:  # one process: checked every step at no cost, no collective
        assert strategy.steps == [] and handled == [signal_step]
