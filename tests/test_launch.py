"""Every process of a torchrun run, on every node, writes to rank 0's run folder."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from torch.distributed import TCPStore

from cnnbench import runs


def test_torchrun_ranks_take_rank_zeros_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent_store = TCPStore("127.0.0.1", port, is_master=True)  # what torchrun's agent on node 0 serves
    for name, value in {"TORCHELASTIC_USE_AGENT_STORE": "True", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(port), "TORCHELASTIC_RESTART_COUNT": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    ids = []
    # Rank 0, then a second process of node 0 and the first process of node 1 (LOCAL_RANK 0, yet not rank 0).
    for rank, local_rank in ((0, 0), (1, 1), (2, 0)):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(local_rank))
        monkeypatch.delenv("CNNBENCH_RUN_ID", raising=False)  # a fresh process: nothing inherited from rank 0
        ids.append(runs.new_run_id(tmp_path))
        if rank == 0:
            runs.time.sleep(1.1)  # a process that named its own run would now pick another time-stamped id
    assert ids[1:] == [ids[0], ids[0]]
    assert agent_store.get("cnnbench/run_id/0").decode() == ids[0]
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # torchrun restarted the workers: a new run
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert runs.new_run_id(tmp_path) != ids[0]
