"""Checkpoints open safely: GPU-written ones on a CPU-only machine, crafted pickles never run, damage named right."""

from __future__ import annotations

import csv
import fractions
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

import cnnbench.checkpoint_io as checkpoint_io
from cnnbench.checkpoint_io import AtomicCheckpointIO, allow_unsafe_checkpoints, load_checkpoint_file
from cnnbench.errors import CheckpointError, UntrustedCheckpointError
from tests.helpers.runs import CnnbenchCLI, base_args, main

# --- Checkpoints whose tensors say they live on cuda:0, written without a GPU --------------------------------------

_tag_as_cuda = False


def _cuda_tagger(storage: Any) -> str | None:
    return "cuda:0" if _tag_as_cuda and storage.device.type == "cpu" else None


def _no_deserializer(storage: Any, location: str) -> None:
    return None  # the real CUDA deserializer handles the "cuda:0" tag (and fails without a GPU)


# Before the CPU tagger (priority 10); returns None, so nothing changes while no test asks for it.
torch.serialization.register_package(5, _cuda_tagger, _no_deserializer)


@contextmanager
def tensors_tagged_as_cuda() -> Iterator[None]:
    """While active, ``torch.save`` records every CPU tensor as stored on ``cuda:0``, as a GPU run's would be."""
    global _tag_as_cuda
    _tag_as_cuda = True
    try:
        yield
    finally:
        _tag_as_cuda = False


def test_a_gpu_checkpoint_tests_predicts_and_resumes_on_the_cpu(fitted) -> None:
    data_dir, root, run_dir = fitted
    last = run_dir / "checkpoints" / "last.ckpt"
    gpu = run_dir / "checkpoints" / "gpu.ckpt"
    with tensors_tagged_as_cuda():
        torch.save(torch.load(last, weights_only=True), gpu)
    with pytest.raises(RuntimeError, match="CUDA"):  # it is what a GPU run writes: torch's default restores to cuda
        torch.load(gpu, weights_only=True)

    tested = CnnbenchCLI(args=["test", *base_args(data_dir, root, f"--ckpt_path={gpu}")])
    reference = CnnbenchCLI(args=["test", *base_args(data_dir, root, f"--ckpt_path={last}")])
    for key in ("test/acc", "test/loss"):
        assert tested.trainer.callback_metrics[key] == reference.trainer.callback_metrics[key]

    predicted = CnnbenchCLI(args=["predict", *base_args(data_dir, root, f"--ckpt_path={gpu}")])
    with open(predicted.log_dir / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 30  # the whole test split

    resumed = CnnbenchCLI(args=["fit", *base_args(data_dir, root, "--trainer.max_epochs=3", f"--ckpt_path={gpu}")])
    assert resumed.trainer.current_epoch == 3 and resumed.trainer.global_step == 15
    assert all(p.device.type == "cpu" for p in resumed.model.parameters())


# --- Crafted pickles -----------------------------------------------------------------------------------------------


class Payload:
    """Unpickled with full pickle, creates the folder ``marker``: the proof that a checkpoint ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def crafted_checkpoints(folder: Path, marker: Path) -> list[Path]:
    """A torch.save file (zip) and a bare pickle, each a plausible checkpoint with the payload inside."""
    folder.mkdir(parents=True, exist_ok=True)
    content = {"state_dict": {}, "epoch": 0, "hyper_parameters": {"lr": Payload(marker)}}
    zipped, bare = folder / "zipped.ckpt", folder / "bare.ckpt"
    torch.save(content, zipped)
    bare.write_bytes(pickle.dumps(content))
    return [zipped, bare]


def refused(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI, expect exit status 2 and the one-line refusal of an untrusted checkpoint."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    assert "holds objects other than tensors and plain data (posix.mkdir)" in line
    assert "CNNBENCH_TRUST_CHECKPOINTS=1" in line and "truncated or corrupt" not in line
    return line


def test_a_crafted_checkpoint_runs_no_code_anywhere(fitted, tmp_path: Path, capsys) -> None:
    data_dir, root, run_dir = fitted
    marker = tmp_path / "payload-ran"
    for crafted in crafted_checkpoints(run_dir / "checkpoints", marker):
        for subcommand, extra in (("fit", ["--trainer.max_epochs=3"]), ("validate", []), ("test", []), ("predict", [])):
            refused([subcommand, *base_args(data_dir, root, *extra, f"--ckpt_path={crafted}")], capsys)
        refused(["export", str(crafted), f"--out={tmp_path / 'exported'}"], capsys)
        with pytest.raises(UntrustedCheckpointError):  # what Lightning calls for fit/validate/test/predict
            AtomicCheckpointIO().load_checkpoint(crafted)
    assert not marker.exists()
    assert not (tmp_path / "exported").exists()


def test_report_refuses_a_crafted_checkpoint(fitted, tmp_path: Path, capsys) -> None:
    data_dir, _, run_dir = fitted
    marker = tmp_path / "payload-ran"
    for crafted in crafted_checkpoints(tmp_path / "crafted", marker):
        # The report draws its figures from the run's best checkpoint, else its last one.
        for best in (run_dir / "checkpoints").glob("best-*.ckpt"):
            best.unlink()
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(crafted.read_bytes())
        refused(["report", str(run_dir), f"--out={tmp_path / 'report'}", f"--data-dir={data_dir}"], capsys)
    assert not marker.exists()


def test_trusting_checkpoints_is_an_explicit_opt_in(fitted, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint holding a harmless class beyond plain data loads only once the user says they trust it."""
    _, _, run_dir = fitted
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["note"] = fractions.Fraction(1, 3)
    path = run_dir / "checkpoints" / "annotated.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(UntrustedCheckpointError, match=r"\(fractions.Fraction\)"):
        load_checkpoint_file(path)
    monkeypatch.setenv(checkpoint_io.TRUST_ENV, "1")
    assert load_checkpoint_file(path)["note"] == fractions.Fraction(1, 3)
    monkeypatch.delenv(checkpoint_io.TRUST_ENV)
    allow_unsafe_checkpoints(True)
    try:
        assert AtomicCheckpointIO().load_checkpoint(path)["note"] == fractions.Fraction(1, 3)
    finally:
        allow_unsafe_checkpoints(False)
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint_file(path)


def test_only_damage_is_called_truncated_or_corrupt(fitted, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, run_dir = fitted
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    for name, damaged in (("cut.ckpt", data[: len(data) // 2]), ("flipped.ckpt", data[:-2000] + bytes(2000))):
        (run_dir / name).write_bytes(damaged)
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            load_checkpoint_file(run_dir / name)

    def fails_to_restore(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False")

    monkeypatch.setattr(checkpoint_io.torch, "load", fails_to_restore)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint_file(last)  # an intact file that cannot be restored here
    assert "deserialize object on a CUDA device" in str(error.value)
    assert "truncated or corrupt" not in str(error.value)


def test_a_resume_that_redoes_a_saved_epoch_end_keeps_one_best_checkpoint(cifar_dir: Path, tmp_path: Path) -> None:
    """Killed after the epoch end's best checkpoint and before its last.ckpt, a run resumes from the earlier
    last.ckpt and saves that epoch's best again: the same file, not a second copy."""

    def fit(*extra: str) -> CnnbenchCLI:
        return CnnbenchCLI(args=["fit", *base_args(cifar_dir, tmp_path, "--checkpoint.last_every_n_steps=1", *extra)])

    stopped = fit("--trainer.max_steps=3")
    checkpoints = stopped.run_dir / "checkpoints"
    mid_epoch = (checkpoints / "last.ckpt").read_bytes()
    fit("--trainer.max_epochs=1", "--ckpt_path=last")
    (best,) = checkpoints.glob("best-*.ckpt")
    (checkpoints / "last.ckpt").write_bytes(mid_epoch)  # as if killed before the epoch end's last.ckpt was written
    resumed = fit("--trainer.max_epochs=1", "--ckpt_path=last")
    assert resumed.run_dir == stopped.run_dir and resumed.trainer.global_step == 5
    assert [p.name for p in checkpoints.glob("best-*.ckpt")] == [best.name]


def test_best_checkpoint_drops_a_per_batch_hook_that_has_nothing_to_do(tmp_path: Path) -> None:
    """Its batch-end hook only looks for step and time triggers: dropped while the checkpoint has neither (if a
    trigger is ever added to best_checkpoint, this fails and the hook must stay)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from cnnbench.callbacks.checkpoints import best_checkpoint

    checkpoint = best_checkpoint(tmp_path)
    assert checkpoint.on_train_batch_end is None and not callable(checkpoint.on_train_batch_end)
    assert checkpoint._every_n_train_steps == 0 and checkpoint._train_time_interval is None
    assert callable(ModelCheckpoint(dirpath=tmp_path).on_train_batch_end)  # only cnnbench's best one
    assert callable(checkpoint.on_validation_end) and callable(checkpoint.on_train_epoch_end)  # where it saves
