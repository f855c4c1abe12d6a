"""Read an offline W&B run file (``run-<id>.wandb``) without a server: config, summary, history, run info.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version) and then LevelDB-log framed
records (32 KiB blocks; each chunk has a crc32, a length and a full/first/middle/last type) holding
``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2

BLOCK, CHUNK_HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    raw = path.read_bytes()
    assert raw[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, pending = [], 7, b""
    while pos + CHUNK_HEADER <= len(raw):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # too little room left in the block: it is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + CHUNK_HEADER])
        data = raw[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == 0 and length == 0:  # zero-filled tail of a block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        pending = data if kind in (FULL, FIRST) else pending + data
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def record_kinds(path: Path) -> set[str]:
    """The kinds of record in the file so far; none while its last record is still half written."""
    try:
        return {r.WhichOneof("record_type") for r in records(path)}
    except DecodeError:
        return set()


def settled(path: Path, timeout: float = 30.0) -> Path:
    """``path`` once W&B's service has written it out: it holds the run record and its size has stopped changing.

    ``finish()`` returns before the service's writer has always flushed the file (seen on a loaded machine).
    """
    deadline, size = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        now = path.stat().st_size
        if now == size and "run" in record_kinds(path):
            return path
        size = now
        time.sleep(0.5)
    raise AssertionError(f"{path}: W&B did not finish writing the run within {timeout} s")


def read_run(path: Path) -> dict[str, Any]:
    """{"run": (name, id, group, tags), "job_type": str, "config": {...}, "summary": {...}, "history": [...],
    "metrics": [...]}.

    Waits for the file to settle first (``settled``).
    """
    settled(path)
    run: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "metrics": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run["run"] = (r.display_name, r.run_id, r.run_group, list(r.tags))
            run["job_type"] = r.job_type
            run["config"].update({item.key: json.loads(item.value_json) for item in r.config.update})
        elif kind == "config":
            run["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            for item in record.summary.update:
                run["summary"]["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
        elif kind == "history":
            items = record.history.item
            run["history"].append({("/".join(i.nested_key) or i.key): json.loads(i.value_json) for i in items})
        elif kind == "metric":
            run["metrics"].append(record.metric)
    return run
