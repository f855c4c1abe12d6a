"""Checkpoint the random number generators, which Lightning's checkpoints leave out."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn


def current_states() -> dict[str, Any]:
    """This process's Python, NumPy and torch (CPU and every visible CUDA device) RNG states, as plain data."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached_gaussian],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_states(states: dict[str, Any]) -> bool:
    """Set this process's RNG states; False if the CUDA states were for another number of devices.

    CUDA states are restored for the devices both machines have; the others keep their seeded state.
    """
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(states["torch"])
    saved_cuda = list(states["cuda"])
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device, state in enumerate(saved_cuda[:devices]):
        torch.cuda.set_rng_state(state, device)
    return len(saved_cuda) == devices


def seed_rank_streams(rank: int) -> None:
    """Give a rank other than 0 random streams of its own (dropout masks, any random op of the model).

    Every rank starts from the run's seed, so the ranks would draw the same dropout masks for their different images.
    Called after the model is built (its initial weights stay the same on every rank) and before a checkpoint's
    states are restored (a resume continues each rank's saved stream). Rank 0 keeps the run's stream: a
    single-process run draws what it always did. Torch (CPU and CUDA), NumPy and Python are reseeded.
    """
    base = int(os.environ.get("PL_GLOBAL_SEED", 0))
    seed = int(np.random.SeedSequence([base, rank]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class RNGStateCheckpoint(Callback):
    """Saves the Python, NumPy and torch (CPU and CUDA) RNG states with every checkpoint and restores them.

    Restoring happens when Lightning loads the checkpoint, before the train dataloader draws its
    shuffling and worker seeds, so a resumed run draws the numbers the uninterrupted one would have.
    Under DDP every rank's states are saved (gathered to each rank as the checkpoint is made: ``state_dict``
    runs on every rank) and each rank restores its own. A run resumed with another number of processes or
    devices restores what fits and warns that its random streams differ from the uninterrupted run's.
    States are stored as plain lists and tensors so that ``torch.load(weights_only=True)`` accepts them;
    checkpoints of the earlier format (one process's states, not a list) still load, as rank 0's.
    """

    def __init__(self) -> None:
        self._rank, self._world_size = 0, 1

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning calls setup before it restores a checkpoint's callback states.
        self._rank, self._world_size = trainer.global_rank, trainer.world_size
        if stage == "fit" and self._rank > 0:
            seed_rank_streams(self._rank)

    def state_dict(self) -> dict[str, Any]:
        states = current_states()
        if self._world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * self._world_size
            torch.distributed.all_gather_object(gathered, states)
            return {"ranks": gathered}
        return {"ranks": [states]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("ranks", [state_dict])  # the earlier format: one process's states
        same_devices = True
        if self._rank < len(saved):
            same_devices = restore_states(saved[self._rank])
        if len(saved) != self._world_size or not same_devices:
            rank_zero_warn(
                f"cnnbench: the checkpoint holds the random states of {len(saved)} process(es) "
                f"({len(saved[0]['cuda'])} CUDA device(s) each); this run has {self._world_size} "
                f"({torch.cuda.device_count() if torch.cuda.is_available() else 0} device(s)). The states that fit "
                "are restored: the resumed run's random streams (shuffling, augmentation, dropout) differ from an "
                "uninterrupted run's."
            )
