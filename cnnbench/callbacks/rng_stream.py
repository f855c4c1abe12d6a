"""Keep DataLoader iterators off the torch random stream that training draws from, so resumes continue it."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback


class LoaderRNGIsolation(Callback):
    """Sets the torch CPU RNG back after DataLoader iterators are made, so only training consumes its stream.

    Making a DataLoader iterator draws the workers' base seed from the global torch RNG (when the loader has no
    ``generator`` of its own), even with no workers. A resumed run makes its iterators at other moments than the
    uninterrupted run did: the train iterator right at a mid-epoch resume (the uninterrupted run made it at the
    epoch start, before the checkpoint), and with persistent workers the validation iterator at the first
    validation (the uninterrupted run made it at the sanity check, which a resume skips). Each extra draw shifts
    every later dropout mask, so the resumed run would train differently. Here the state before an epoch's (or a
    fit's) first batch is fetched is set again before that batch trains, and the state after the last training
    step is set again after each validation: checkpoints then hold a position in a stream that only training
    steps advance, and a resume continues it exactly. cnnbench's augmentation does not use the workers' seeds
    (each image carries its own), and validation draws no random numbers of its own.

    Random numbers a LightningModule draws in ``on_train_epoch_start``, or in ``on_train_batch_end`` just before
    a validation, come round again (the state is set back over them), the same way in every run.
    """

    def __init__(self) -> None:
        self._before_fetch: torch.Tensor | None = None  # the state to set before the next batch trains
        self._after_step: torch.Tensor | None = None  # the state after the latest training step

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # For a resume mid-epoch, where Lightning calls no on_train_epoch_start: the state just restored.
        self._before_fetch, self._after_step = torch.get_rng_state(), None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._before_fetch = torch.get_rng_state()

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._before_fetch is not None:  # the first batch of the epoch or fit: its fetch made the iterator
            torch.set_rng_state(self._before_fetch)
            self._before_fetch = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._after_step = torch.get_rng_state()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Not after the sanity check (before any step) nor in a validate() call outside fit (_after_step unset).
        if self._after_step is not None and not trainer.sanity_checking:
            torch.set_rng_state(self._after_step)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._before_fetch = self._after_step = None
