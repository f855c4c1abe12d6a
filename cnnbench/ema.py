"""An exponential moving average of the weights (``--model.ema_decay``), kept by Lightning's EMAWeightAveraging."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging


class WeightEMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging, updated after every optimizer step, parameters and buffers alike.

    What Lightning's callback does, and cnnbench relies on: validation runs on the averaged weights (swapped in
    at each validation epoch's start and out at its end), so ``val/acc`` and the best checkpoint are the
    average's; every checkpoint's ``state_dict`` holds the averaged weights (what ``test``, ``predict`` and
    ``export`` load) and ``current_model_state`` the raw ones, which a resume trains on; at the end of training
    the model is left holding the average.

    Two changes: the metric states in a checkpoint's ``state_dict`` (best accuracy, the running train means) are
    the model's, not those of the average's copy made at the start of training, and Lightning's warning about
    ``configure_model`` is not shown (cnnbench's only sets channels-last and compiles, which the copy keeps).
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You're using the WeightAveraging callback with a model that")
            super().setup(trainer, pl_module, stage)

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
