"""benchmarks/gpu_check.py's CPU version runs (so the GPU check does not rot) and its rows pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_the_gpu_checks_cpu_version_passes_and_prints_its_table() -> None:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu"], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "status" not in line]
    assert len(rows) == 7
    assert [r.split("|")[2].strip() for r in rows] == ["ok"] * 4 + ["skipped"] * 2 + ["ok"]
    assert "0 syncs in each of steps 2-10" in done.stdout
    assert "skipped: needs CUDA" in done.stdout
