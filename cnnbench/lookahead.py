"""Lookahead of the weights (``--model.lookahead_decay``): airbench's way of averaging in a short run."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor

from cnnbench.optim import schedule_steps


class Lookahead(Callback):
    """Pulls the weights back toward a slow copy of themselves every ``every`` optimizer steps.

    The slow copy covers the model's floating-point state (parameters and BatchNorm statistics). At every
    ``every``-th step it moves toward the weights, ``slow += (1 - d) * (weights - slow)``, and the weights are set
    to it, where ``d = decay * (step / total_steps) ** 3``: no pull at first, the strongest at the end. At the
    schedule's last step the weights take the slow copy as it is (``d = 1``), so the model a run ends with, and
    its last checkpoint, are the slow weights. The copy is saved in every checkpoint: a resumed run continues it.
    A run stopped before its last step (``--trainer.max_steps``, a kill) keeps its fast weights until resumed.

    Args:
        decay: The pull's largest ``d`` (airbench: 0.95 ** 5).
        every: Steps between pulls.
    """

    def __init__(self, decay: float, every: int = 5) -> None:
        self.decay, self.every = decay, every
        self._slow: dict[str, Tensor] | None = None
        self._total_steps = 0

    @property
    def state_key(self) -> str:
        return "Lookahead"

    @staticmethod
    def weights(pl_module: LightningModule) -> dict[str, Tensor]:
        """The network's floating-point parameters and buffers (its ``backbone``: not the metric states), as
        tensors sharing their storage."""
        network = getattr(pl_module, "backbone", pl_module)
        return {name: t for name, t in network.state_dict().items() if t.is_floating_point()}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._total_steps, _ = schedule_steps(trainer)  # once: sizing it asks the loader, not a per-step cost

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, total_steps = trainer.global_step, self._total_steps
        last = step >= total_steps
        if step % self.every and not last:
            return
        weights = self.weights(pl_module)
        if self._slow is None:
            self._slow = {name: t.detach().clone() for name, t in weights.items()}
        d = 1.0 if last else self.decay * (step / total_steps) ** 3
        for name, weight in weights.items():
            slow = self._slow[name]
            if slow.device != weight.device:  # restored from a checkpoint loaded onto the CPU
                slow = self._slow[name] = slow.to(weight.device)
            if d < 1.0:
                slow.lerp_(weight, 1.0 - d)
            weight.copy_(slow)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": self._slow} if self._slow is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._slow = state_dict.get("slow")
