"""Optimizer parameter groups, the per-step warmup + decay (cosine, linear or none) learning-rate schedule, and the
optimizer and schedule a classifier's options build."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from cnnbench.optim_muon import Muon, muon_groups

Decay = Literal["cosine", "linear", "constant"]

# Layers whose parameters are normalization scales and shifts (what ``norm_lr_scale`` speeds up).
NORM_LAYERS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
)  # fmt: skip


def param_groups(
    model: nn.Module,
    weight_decay: float,
    decay_norm_and_bias: bool = False,
    norm_lr_scale: float = 1.0,
    shifts_at_norm_lr: Sequence[Tensor] = (),
) -> list[dict[str, Any]]:
    """Split parameters into a decayed group and an undecayed one (biases and norm weights, i.e. ndim <= 1).

    With ``norm_lr_scale`` != 1 the normalization layers' parameters (and ``shifts_at_norm_lr``, a model's
    other shifts) form a third group whose LR is the others' times ``norm_lr_scale`` (an ``lr_scale`` key the
    optimizer setup multiplies in) and whose weight decay, if any, is divided by it, so that the decay per step
    (LR times decay) stays that of the other parameters.
    """
    norm_params = set()
    if norm_lr_scale != 1.0:
        norm_params = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
        norm_params |= {id(p) for p in shifts_at_norm_lr}
    decay, no_decay, norm = [], [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        if id(param) in norm_params:
            norm.append(param)
        else:
            (decay if decay_norm_and_bias or param.ndim > 1 else no_decay).append(param)
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if norm:
        norm_decay = weight_decay / norm_lr_scale if decay_norm_and_bias else 0.0
        groups.append({"params": norm, "weight_decay": norm_decay, "lr_scale": norm_lr_scale})
    return groups


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float, decay: Decay) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warmup, then cosine or linear decay to
    ``min_lr_ratio`` at ``total_steps`` (or constant)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    remaining = 0.5 * (1.0 + math.cos(math.pi * progress)) if decay == "cosine" else 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * remaining


class WarmupDecayLR(LRScheduler):
    """Linear warmup then cosine or linear decay to ``min_lr_ratio * lr``, stepped once per optimizer step.

    Warmup to the peak then a linear decay is the triangular schedule of one-cycle training.

    Only the step count is checkpointed: the schedule's length comes from the current run, so a run
    resumed with a larger ``max_epochs`` follows the schedule an uninterrupted run of that length has.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        decay: Decay = "cosine",
    ) -> None:
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.decay = decay
        super().__init__(optimizer)

    def lrs_at(self, step: int) -> list[float]:
        factor = lr_factor(step, self.total_steps, self.warmup_steps, self.min_lr_ratio, self.decay)
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


def schedule_steps(trainer: Trainer) -> tuple[int, int]:
    """(optimizer steps the run's schedules span, optimizer steps per epoch; 0 without a sized loader).

    The span is --trainer.max_epochs epochs when that is set: max_steps and max_time are stops a run may resume
    past, as after a crash, so they must not reshape a schedule (max_steps alone, with max_epochs -1, sizes it).
    """
    total_steps = int(trainer.estimated_stepping_batches)  # also makes Lightning count the batches
    batches = trainer.num_training_batches  # infinite for a loader without a length: then no epochs to span
    steps_per_epoch = math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else 0
    if trainer.max_epochs is not None and trainer.max_epochs > 0 and steps_per_epoch:
        total_steps = trainer.max_epochs * steps_per_epoch
    return total_steps, steps_per_epoch


def optimizer_config(
    model: nn.Module, hp: AttributeDict, trainer: Trainer, shifts_at_norm_lr: Sequence[Tensor] = ()
) -> OptimizerLRSchedulerConfig:
    """The optimizer (``hp.optimizer``: sgd, adam, adamw or muon) and per-step LR schedule of ``model``, as
    ``ImageClassifier``'s options ``hp`` say; what ``configure_optimizers`` returns. ``shifts_at_norm_lr``:
    parameters trained at the normalization layers' LR (``param_groups``)."""
    groups = param_groups(model, hp.weight_decay, hp.decay_norm_and_bias, hp.norm_lr_scale, shifts_at_norm_lr)
    for group in groups:
        group["lr"] = hp.lr * group.get("lr_scale", 1.0)
    # Sized from the trainer so the schedules span exactly this run (and a resumed one continues them).
    total_steps, steps_per_epoch = schedule_steps(trainer)
    if hp.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov)
    elif hp.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, lr=hp.lr)
    elif hp.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=hp.lr)
    else:
        groups = muon_groups(groups, model, hp.muon_lr, hp.muon_momentum, hp.muon_weight_decay, hp.muon_aux)
        optimizer = Muon(groups, momentum=hp.momentum, nesterov=hp.nesterov, ns_steps=hp.muon_ns_steps,
                         renorm_every=hp.muon_renorm_every, renorm_every_final=hp.muon_renorm_every_final,
                         total_steps=total_steps)  # fmt: skip
    scheduler = WarmupDecayLR(
        optimizer,
        total_steps=total_steps,
        warmup_steps=round(hp.warmup_epochs * steps_per_epoch),
        min_lr_ratio=hp.min_lr_ratio,
        decay=hp.lr_schedule,
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
