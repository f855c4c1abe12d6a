"""Counting host-device syncs on any device, the CPU included.

On a GPU, ``torch.cuda.set_sync_debug_mode`` reports the syncs themselves. On the CPU nothing waits, so
:class:`HostSyncCounter` counts by intent: the aten ops that hand a tensor's value to the host
(``_local_scalar_dense`` behind ``.item()``, ``bool()``, ``int()``; ``nonzero``, ``masked_select`` and ``unique``,
whose output size depends on the values; ``equal``/``is_nonzero``), every copy whose output is on another device
than its input, and the Python-side reads that dispatch no op on a CPU tensor (``.cpu()``, ``.tolist()``,
``.numpy()``). Code run inside the counter is treated as device code: the window must hold only the training step's
work, not the host-side loading of the next batch.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: aten ops that read a value back to the host (or size an output by the values, which needs the same).
SYNC_OPS = frozenset(
    {"_local_scalar_dense", "item", "is_nonzero", "equal", "allclose", "nonzero", "masked_select", "unique",
     "_unique", "_unique2", "unique_consecutive", "unique_dim", "argwhere", "nonzero_static"}
)  # fmt: skip
COPY_OPS = frozenset({"_to_copy", "copy_", "to", "_copy_from", "_copy_from_and_resize"})
PYTHON_READS = ("cpu", "tolist", "numpy", "__array__")


def _devices(tree: Any) -> set[torch.device]:
    flat = tree if isinstance(tree, (list, tuple)) else [tree]
    found: set[torch.device] = set()
    for item in flat:
        if isinstance(item, torch.Tensor):
            found.add(item.device)
        elif isinstance(item, (list, tuple)):
            found |= _devices(item)
    return found


class HostSyncCounter(TorchDispatchMode):
    """A dispatch mode counting what would make the host wait for the device (see the module docstring).

    ``counts`` maps each op (or ``Tensor.<method>``) to how often it ran while the counter was active.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._saved: dict[str, Any] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._overloadpacket.__name__
        if name in SYNC_OPS:
            self.counts[name] += 1
        elif name in COPY_OPS and _devices(out) - _devices((args, list(kwargs.values()))):
            self.counts[f"{name} to another device"] += 1
        return out

    def __enter__(self) -> HostSyncCounter:
        for method in PYTHON_READS:
            original = self._saved[method] = getattr(torch.Tensor, method)
            setattr(torch.Tensor, method, self._counting(method, original))
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        for method, original in self._saved.items():
            setattr(torch.Tensor, method, original)
        self._saved.clear()

    def _counting(self, method: str, original: Any) -> Any:
        @functools.wraps(original)
        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            self.counts[f"Tensor.{method}"] += 1
            return original(tensor, *args, **kwargs)

        return counted
