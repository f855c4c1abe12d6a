"""Checkpoint the random number generators, which Lightning's checkpoints leave out."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class RNGStateCheckpoint(Callback):
    """Saves the Python, NumPy and torch (CPU and CUDA) RNG states with every checkpoint and restores them.

    Restoring happens when Lightning loads the checkpoint, before the train dataloader draws its
    shuffling and worker seeds, so a resumed run draws the numbers the uninterrupted one would have.
    States are stored as plain lists and tensors so that ``torch.load(weights_only=True)`` accepts them.
    Under DDP the states saved are those of rank 0.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
        return {
            "python": random.getstate(),
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached_gaussian],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached_gaussian = state_dict["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached_gaussian))
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
