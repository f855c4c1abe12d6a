"""The ``cnnbench`` command flushes float denormals to zero on every CPU thread (each costs many normal operations)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

# In a fresh process, as a user's command starts: the command, then a parallel elementwise operation on denormals,
# split over torch's intra-op threads. A thread that kept denormals leaves its share of the product non-zero. (The
# denormal is written as bits: converting 1e-39 to float32 on a flushing thread would give 0 before any test.)
CHILD = """
import torch
{before}
from cnnbench.__main__ import main
main(["models"])
x = torch.full((1 << 22,), 0x00100000, dtype=torch.int32).view(torch.float32)
print("nonzero", int(((x * 0.5) != 0).sum()))
"""


def nonzero_products(before: str = "") -> int:
    child = CHILD.format(before=before)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=True)
    return int(result.stdout.split("nonzero ")[1].split()[0])


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs two intra-op threads")
def test_every_cpu_thread_treats_denormals_as_zero_after_the_command_starts() -> None:
    assert nonzero_products() == 0
    # What the test tells apart: a thread pool started before the flush keeps denormals on its worker threads
    # (settings are copied when a thread starts), and without the flush every product stays denormal.
    assert 0 < nonzero_products(before="torch.ones(1 << 24).mul_(2)") < 1 << 22
    assert nonzero_products(before="torch.set_flush_denormal = lambda on: None") == 1 << 22
