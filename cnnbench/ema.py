"""An exponential moving average of the weights (``--model.ema_decay``), kept by Lightning's EMAWeightAveraging."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import Tensor


class WeightEMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging, updated after every optimizer step, parameters and buffers alike.

    What Lightning's callback does, and cnnbench relies on: validation runs on the averaged weights (swapped in
    at each validation epoch's start and out at its end), so ``val/acc`` and the best checkpoint are the
    average's; every checkpoint's ``state_dict`` holds the averaged weights (what ``test``, ``predict`` and
    ``export`` load) and ``current_model_state`` the raw ones, which a resume trains on; at the end of training
    the model is left holding the average.

    The update is cnnbench's, not ``AveragedModel.update_parameters``, which reads its step counter back from the
    device (``bool(n_averaged == 0)``) twice a step: here the count is a Python number (restored once from the
    checkpoint's ``n_averaged``, which is still kept, on the device, so checkpoints keep Lightning's format), and the
    floating-point tensors move with one ``torch._foreach_lerp_``. The average is moved to the model's device when
    the fit starts (Lightning makes it in ``setup``, before the model reaches the GPU, so every step would otherwise
    copy the weights to the host) and stays float32 whatever ``--trainer.precision`` (16-true, bf16-true: a half
    precision average would lose the small ``(1 - decay)`` steps); validation swaps it in without rounding it.

    Also: the metric states in a checkpoint's ``state_dict`` (best accuracy, the running train means) are
    the model's, not those of the average's copy made at the start of training, and Lightning's warning about
    ``configure_model`` is not shown (cnnbench's only sets channels-last and compiles, which the copy keeps).
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)
        self.decay = decay
        self._updates = 0  # n_averaged, kept on the host
        self._raw: list[Tensor] | None = None  # the raw weights while validation runs on the average

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You're using the WeightAveraging callback with a model that")
            super().setup(trainer, pl_module, stage)
        self._updates = 0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After the strategy moved (and cast) the model: the average joins it on its device, in float32.
        if self._average_model is not None:
            self._average_model.to(pl_module.device)

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(trainer, pl_module, checkpoint)
        if self._average_model is not None:  # loaded before the fit starts: still on the host, no device sync
            self._updates = int(self._average_model.n_averaged)

    def _pairs(self, pl_module: LightningModule) -> tuple[list[Tensor], list[Tensor]]:
        assert self._average_model is not None
        average = self._average_model.module
        avg = [t.detach() for t in itertools.chain(average.parameters(), average.buffers())]
        cur = [t.detach() for t in itertools.chain(pl_module.parameters(), pl_module.buffers())]
        return avg, cur

    @torch.no_grad()
    def update_average(self, pl_module: LightningModule) -> None:
        """One EMA step, ``average += (1 - decay) * (weights - average)``, with no host-device sync (the first
        call copies the weights); integer buffers (BatchNorm's batch counts) are copied."""
        avg, cur = self._pairs(pl_module)
        floats = [(a, c.to(a.dtype)) for a, c in zip(avg, cur, strict=True) if a.is_floating_point()]
        if self._updates == 0:
            torch._foreach_copy_([a for a, _ in floats], [c for _, c in floats])
        elif floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1.0 - self.decay)
        for a, c in zip(avg, cur, strict=True):
            if not a.is_floating_point():
                a.copy_(c)
        assert self._average_model is not None
        self._average_model.n_averaged.add_(1)
        self._updates += 1

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Lightning's condition: once per optimizer step (not per accumulated batch).
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=trainer.global_step - 1):
            self.update_average(pl_module)
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch > self._latest_update_epoch and self.should_update(epoch_idx=trainer.current_epoch):
            self.update_average(pl_module)
            self._latest_update_epoch = trainer.current_epoch

    @torch.no_grad()
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            avg, cur = self._pairs(pl_module)
            self._raw = [c.clone() for c in cur]
            for a, c in zip(avg, cur, strict=True):
                c.copy_(a)

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None and self._raw is not None:
            _, cur = self._pairs(pl_module)
            torch._foreach_copy_(cur, self._raw)
            self._raw = None

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        current = checkpoint.get("current_model_state")
        if current is None:
            return
        averaged = {name for name, _ in itertools.chain(pl_module.named_parameters(), pl_module.named_buffers())}
        state = checkpoint["state_dict"]
        for key in state:
            if key not in averaged and key in current:
                state[key] = current[key]
