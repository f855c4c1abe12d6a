"""Metrics torchmetrics has no sync-free or cheap-enough-per-step form of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MaxMetric, Metric


class Float32States(Metric):
    """A metric whose floating-point states stay float32 when the model is cast (``--trainer.precision bf16-true``,
    ``16-true``: Lightning calls ``module.to(dtype)``, which torchmetrics applies to the states too).

    In bfloat16 a count stops growing at 32,768 (the next representable number is 256 away: adding a batch of 128
    rounds back), and in float16 a CIFAR epoch's summed loss overflows to inf. Device moves still apply.
    """

    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> Any:
        def same_dtype(t: Tensor) -> Tensor:
            out = fn(t)
            return out.to(t.dtype) if t.is_floating_point() and out.dtype != t.dtype else out

        return super()._apply(same_dtype, *args, **kwargs)


class BestValue(Float32States, MaxMetric):
    """``MaxMetric`` (the best validation accuracy) with float32 states under any precision."""


class PerImageMean(Float32States):
    """The mean of a per-image quantity (a loss) over every image of the epoch, fed one batch mean at a time.

    torchmetrics' ``MeanMetric(nan_strategy="disable")`` ignores its ``weight`` (1.9 replaces it with ones), so a
    small last batch would count as much as a full one; with a NaN check instead, every update reads a value back
    from the device. Here ``update(batch_mean, n)`` adds ``batch_mean * n`` and ``n`` to two device tensors, with
    ``n`` a Python number: scalar operands, no host-to-device copy and no host sync per step. Under DDP the sums
    are added across ranks, so the mean is over every image of every rank. A NaN loss shows as a NaN mean.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # float32 whatever the default dtype when the model is built (half precision would lose the small terms).
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float32), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float32), dist_reduce_fx="sum")

    def update(self, batch_mean: Tensor, n: int) -> None:
        """Add a batch whose ``n`` images have mean ``batch_mean`` (a 0-dim tensor)."""
        # In place: `self.total += ...` would also run nn.Module.__setattr__, which costs more than the addition.
        self.total.add_(batch_mean.detach().to(self.total.dtype), alpha=n)
        self.count.add_(n)

    def compute(self) -> Tensor:
        return self.total / self.count


class RunningAccuracy(Metric):
    """Top-1 accuracy over every image of the epoch, from two counts kept on the device.

    ``MulticlassAccuracy`` computes per-class statistics (and checks its inputs) at every update; a training step
    needs only the number of correct images, one comparison and two in-place additions. Under DDP the counts are
    added across ranks.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    correct: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, labels: Tensor) -> None:
        """Add a batch: ``logits`` (N, C) and the true class indices ``labels`` (N,)."""
        self.correct.add_((logits.argmax(dim=1) == labels).sum())
        self.count.add_(labels.numel())

    def compute(self) -> Tensor:
        return self.correct / self.count


#: The state_dict keys of the running train means (persistent, so a mid-epoch resume reports the whole epoch).
TRAIN_MEANS = ("train_loss.total", "train_loss.count", "train_acc.correct", "train_acc.count")


def _states(checkpoint: dict[str, Any]) -> list[dict[str, Tensor]]:
    # With EMA the raw model's states (what a resume loads) are under current_model_state.
    return [checkpoint[k] for k in ("state_dict", "current_model_state") if isinstance(checkpoint.get(k), dict)]


def save_global_train_means(checkpoint: dict[str, Any]) -> None:
    """Under DDP, put every rank's running train sums, added up, in the checkpoint (which rank 0 writes): alone,
    rank 0's own sums would be saved. Runs on every rank (Lightning builds the checkpoint on each)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if torch.distributed.get_world_size() == 1:
        return
    for state in _states(checkpoint):
        for key in TRAIN_MEANS:
            if key in state:
                total = state[key].clone()
                torch.distributed.all_reduce(total)
                state[key] = total


def load_global_train_means(checkpoint: dict[str, Any]) -> None:
    """The counterpart of :func:`save_global_train_means`: rank 0 resumes with the saved (global) sums and the other
    ranks from zero, so that the epoch's sums, added across ranks at its end, count every image once (whatever the
    number of ranks of the resumed run)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if torch.distributed.get_rank() == 0:
        return
    for state in _states(checkpoint):
        for key in TRAIN_MEANS:
            if key in state:
                state[key] = torch.zeros_like(state[key])


def gather_on_rank_zero(*tensors: Tensor) -> tuple[Tensor, ...] | None:
    """Each of ``tensors`` (host tensors of this rank's share of an evaluation) concatenated over the ranks, in rank
    order, on global rank 0; None on the other ranks. Without DDP: the tensors as given. Every rank must call it."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed or torch.distributed.get_world_size() == 1:
        return tensors
    shares: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shares, tensors)
    if torch.distributed.get_rank() != 0:
        return None
    return tuple(torch.cat(parts) for parts in zip(*shares, strict=True))
