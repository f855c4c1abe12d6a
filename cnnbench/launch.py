"""What the launcher (Lightning's own, torchrun, SLURM) means for one run: its folder and what it resumes.

These are decided before Lightning creates any process group, so the processes of a run agree through what the
launcher gives them: the environment, or torchrun's own key-value store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from cnnbench.checkpoint_io import load_checkpoint_file
from cnnbench.errors import CheckpointError

HPC_PATTERN = re.compile(r"^hpc_ckpt_(\d+)\.ckpt$")  # Lightning's SLURM requeue checkpoints, in the run folder
_RUN_ID_KEY = "cnnbench/run_id"
STORE_TIMEOUT = timedelta(minutes=5)  # how long a rank waits for rank 0 to name the run


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def _torchrun_store() -> object | None:
    """A client of torchrun's own store (its agent on node 0 serves it at MASTER_ADDR:MASTER_PORT), if any."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return None
    from torch.distributed import TCPStore

    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    return TCPStore(host, port, is_master=False, timeout=STORE_TIMEOUT)


def shared_run_id(make: Callable[[], str]) -> str:
    """The run id of this process: ``make()``'s on global rank 0, and under torchrun rank 0's on every rank.

    torchrun starts every rank itself, on every node, with nothing of rank 0's in the environment: each would
    otherwise name a run of its own (rank 0 alone writes the files, but the other ranks' paths would differ).
    """
    store = _torchrun_store()
    if store is None:
        return make()
    key = f"{_RUN_ID_KEY}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"  # a restarted group names a new run
    if os.environ.get("RANK", "0") == "0":
        run_id = make()
        store.set(key, run_id)  # type: ignore[attr-defined]
        return run_id
    return store.get(key).decode()  # type: ignore[attr-defined]  # waits for rank 0's


def _global_step(path: Path) -> int | None:
    try:
        return int(load_checkpoint_file(path, weights_only=True, mmap=True).get("global_step", -1))
    except CheckpointError as exc:  # a file cut by the kill: the other states may still resume
        rank_zero_info(f"cnnbench: --ckpt_path auto: skipping {path}: {exc}")
        return None


def newest_state(run_dir: Path, last: Path) -> Path | None:
    """The state of a run folder with the most optimizer steps: its ``last`` or one of Lightning's
    ``hpc_ckpt_N.ckpt`` (saved on a SLURM requeue signal, possibly after the last ``last.ckpt``).

    On equal steps ``last`` wins, then the highest N; None when the folder holds neither.
    """
    candidates = [(True, 0, last)] if last.is_file() else []  # (is last.ckpt, hpc version, path)
    candidates += [(False, int(m[1]), p) for p in run_dir.glob("hpc_ckpt_*.ckpt") if (m := HPC_PATTERN.match(p.name))]
    scored = [(step, *c) for c in candidates if (step := _global_step(c[2])) is not None]
    return max(scored, key=lambda s: s[:3])[3] if scored else None
