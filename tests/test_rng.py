"""RNG checkpoints: each DDP rank gets its own states back, and a machine with other devices still resumes."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from cnnbench.callbacks.rng import RNGStateCheckpoint, current_states


def seeded_states(seed: int) -> dict[str, Any]:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return current_states()


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def callback_of_rank(rank: int, world_size: int) -> RNGStateCheckpoint:
    callback = RNGStateCheckpoint()
    # Not "fit", whose setup also gives ranks > 0 their own streams (test_each_rank_draws_its_own_dropout_masks).
    callback.setup(SimpleNamespace(global_rank=rank, world_size=world_size), None, "validate")  # type: ignore[arg-type]
    return callback


def through_a_file(state: dict[str, Any]) -> dict[str, Any]:
    """The state as a resumed run reads it: saved and loaded with ``weights_only=True``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_each_rank_saves_and_restores_its_own_states(monkeypatch: pytest.MonkeyPatch) -> None:
    states = [seeded_states(1), seeded_states(2)]
    expected = []
    for seed in (1, 2):
        seeded_states(seed)
        expected.append(draws())

    def all_gather_object(output: list[Any], obj: Any) -> None:
        assert obj["torch"].equal(states[1]["torch"])  # this process is rank 1 and holds its own states
        output[:] = states

    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    seeded_states(2)
    saved = through_a_file(callback_of_rank(1, 2).state_dict())
    monkeypatch.undo()
    assert len(saved["ranks"]) == 2

    for rank in (1, 0):
        seeded_states(99)
        callback_of_rank(rank, 2).load_state_dict(saved)
        assert draws() == expected[rank]


def test_a_one_process_checkpoint_of_the_earlier_format_still_loads() -> None:
    old_format = through_a_file(seeded_states(7))  # one process's states, not a list of ranks
    expected = draws()
    seeded_states(99)
    callback_of_rank(0, 1).load_state_dict(old_format)
    assert draws() == expected


def test_cuda_states_of_more_devices_than_here_restore_what_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of 2 GPUs resumed on a machine with 1: device 0 gets its state, and one warning says what changed."""
    restored: list[int] = []

    def set_rng_state(state: torch.Tensor, device: int | str = "cuda") -> None:
        index = torch.device(device).index if not isinstance(device, int) else device
        if index >= 1:
            raise IndexError("list index out of range")  # what torch raises for a device this machine lacks
        restored.append(index)

    # Saved by a process that saw 2 GPUs.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    two_devices = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: two_devices)
    saved = through_a_file(callback_of_rank(0, 1).state_dict())
    # Resumed where there is 1.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    with pytest.warns(UserWarning, match="random streams .* differ") as warned:
        callback_of_rank(0, 1).load_state_dict(saved)
    assert restored == [0] and len(warned) == 1

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # and on a machine without a GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    restored.clear()
    with pytest.warns(UserWarning, match="random streams .* differ"):
        callback_of_rank(0, 1).load_state_dict(saved)
    assert restored == []


def test_more_ranks_than_were_saved_keep_their_seeded_states_and_warn() -> None:
    saved = through_a_file({"ranks": [seeded_states(1)]})
    seeded_states(5)
    expected = draws()
    seeded_states(5)
    with pytest.warns(UserWarning, match="states of 1 process"):
        callback_of_rank(1, 2).load_state_dict(saved)
    assert draws() == expected  # rank 1 of 2 has nothing saved: it keeps what the seed gave it


def test_each_rank_draws_its_own_dropout_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every rank of a DDP run starts from the run's seed (seed_everything); the fit's setup gives ranks > 0 streams
    # of their own, while rank 0 keeps the run's (a single-process run draws what it always did).
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    dropout = torch.nn.Dropout(0.5)

    def mask_of_rank(rank: int, stage: str = "fit") -> torch.Tensor:
        torch.manual_seed(7)
        RNGStateCheckpoint().setup(SimpleNamespace(global_rank=rank, world_size=2), None, stage)  # type: ignore[arg-type]
        return dropout(torch.ones(64)) == 0

    torch.manual_seed(7)
    unseeded = dropout(torch.ones(64)) == 0
    masks = [mask_of_rank(r) for r in range(3)]
    assert torch.equal(masks[0], unseeded)
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    assert torch.equal(mask_of_rank(1), masks[1])  # a function of the run's seed and the rank
    assert torch.equal(mask_of_rank(1, stage="test"), unseeded)  # only fit draws
