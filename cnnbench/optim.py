"""Optimizer parameter groups and the per-step warmup + cosine learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool = False) -> list[dict[str, Any]]:
    """Split parameters into a decayed group and an undecayed one (biases and norm weights, i.e. ndim <= 1)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (decay if decay_norm_and_bias or param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float, cosine: bool) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warmup, then cosine decay (or constant)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if not cosine:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineLR(LRScheduler):
    """Linear warmup then cosine decay to ``min_lr_ratio * lr``, stepped once per optimizer step.

    Only the step count is checkpointed: the schedule's length comes from the current run, so a run
    resumed with a larger ``max_epochs`` follows the schedule an uninterrupted run of that length has.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        cosine: bool = True,
    ) -> None:
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.cosine = cosine
        super().__init__(optimizer)

    def lrs_at(self, step: int) -> list[float]:
        factor = warmup_cosine_factor(step, self.total_steps, self.warmup_steps, self.min_lr_ratio, self.cosine)
        return [base_lr * factor for base_lr in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self.lrs_at(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = state_dict["last_epoch"]
        self._step_count = state_dict["_step_count"]
        # The optimizer state restored just before holds the old run's LR; set the one this schedule
        # gives now, or the first step after a resume would use a stale value.
        self._last_lr = self.lrs_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr
