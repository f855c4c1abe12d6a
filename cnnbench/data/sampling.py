"""The train loader's order and augmentation as a pure function of (seed, epoch, position), so it can resume.

An interrupted run continues mid-epoch with exactly the batches, in the same order and with the same random
crops and flips, that the uninterrupted run would have drawn: the sampler shuffles with a generator seeded by
``seed + epoch`` (as DistributedSampler does, which also makes it shard correctly under DDP), hands each
image a seed for its augmentation, and the loader records how many batches it has delivered. Because the
augmentation seed travels with the index, results do not depend on ``num_workers`` or on worker RNG states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

SeedMap = Callable[[Tensor, Tensor, int, int], Tensor]


class ResumableSampler(DistributedSampler):
    """Yields ``(index, augmentation_seed)`` for this rank's share of a seeded per-epoch shuffle.

    Being a DistributedSampler, Lightning leaves it in place under DDP instead of wrapping it; with
    ``num_replicas=1`` it is a plain seeded shuffle of the whole split. ``seed_map(indices, seeds, epoch, seed)``
    may rewrite this rank's seeds, as a function of those arguments only (e.g. ``fast.alternate_flips``).
    """

    def __init__(
        self, dataset: Any, seed: int, num_replicas: int = 1, rank: int = 0, seed_map: SeedMap | None = None
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.seed_map = seed_map
        self._resume_epoch = -1
        self._resume_position = 0

    def resume_at(self, epoch: int, position: int) -> None:
        """Start epoch ``epoch`` at its ``position``-th sample (for this rank) the next time it is iterated."""
        self.epoch, self._resume_epoch, self._resume_position = epoch, epoch, position

    def start_position(self) -> int:
        """Where the next iteration of the current epoch starts: 0, or the position of a pending resume."""
        return self._resume_position if self.epoch == self._resume_epoch else 0

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        # One seed per position of the full shuffle, then this rank's share: the same on every rank count.
        seeds = torch.randint(0, 2**62, (len(indices) * self.num_replicas,), generator=generator)
        seeds = seeds[self.rank :: self.num_replicas]
        if self.seed_map is not None and indices:
            seeds = self.seed_map(torch.tensor(indices), seeds, self.epoch, self.seed)
        seeds = seeds.tolist()
        start = self.start_position()
        self._resume_epoch = -1  # the skip applies once
        return iter(list(zip(indices, seeds, strict=True))[start:])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ResumableSampler whose ``state_dict`` is the position in the epoch.

    Lightning saves this state in every checkpoint and hands it back on resume. Lightning fetches batches of a
    sized loader one at a time (no prefetch), so the batches yielded are the batches trained on.
    """

    sampler: ResumableSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch = 0
        self._batches_yielded = 0

    def __iter__(self) -> Iterator[Any]:
        # Lazy: Lightning creates the iterator before it calls set_epoch, so the order is fixed at the first batch.
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        self._epoch = self.sampler.epoch
        self._batches_yielded = self.sampler.start_position() // self.batch_size
        for batch in super().__iter__():
            self._batches_yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batches": self._batches_yielded, "seed": self.sampler.seed}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.sampler.seed = state_dict["seed"]  # the interrupted run's order, even if --seed_everything changed
        self.sampler.resume_at(state_dict["epoch"], state_dict["batches"] * self.batch_size)


class EvalShardSampler(DistributedSampler):
    """This rank's share of an evaluation split, in order and without padding: image ``i`` goes to rank
    ``i % num_replicas``, each image to exactly one rank.

    Lightning's default evaluation sampler under DDP repeats images until every rank has as many, so a split not
    divisible by the rank count would be counted with duplicates. The shares may then differ by one image;
    evaluation runs no per-batch collective, and the metrics add up their states at the epoch end.
    """

    def __init__(self, dataset: Any, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.num_samples
