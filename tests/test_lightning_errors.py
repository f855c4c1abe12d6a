"""Options Lightning refuses only once it runs (MisconfigurationException and friends): one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.runs import CnnbenchCLI, base_args, main


def refused(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    return line


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resuming_with_fewer_epochs_than_done_says_what_to_do(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "runs"
    run_dir = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=3")]).run_dir
    capsys.readouterr()
    before = files(run_dir / "checkpoints")
    metrics = (run_dir / "metrics.csv").read_bytes()
    line = refused(["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2", "--ckpt_path=last")], capsys)
    assert "already trained 3 epochs" in line and "cnnbench test --ckpt_path" in line and "larger than 3" in line
    assert files(run_dir / "checkpoints") == before and (run_dir / "metrics.csv").read_bytes() == metrics


def test_an_option_lightning_refuses_at_fit_time_is_one_line(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # 5 training batches per epoch: a validation every 1000 batches cannot happen (Lightning's ValueError).
    line = refused(["fit", *base_args(cifar_dir, tmp_path / "runs", "--trainer.val_check_interval=1000")], capsys)
    assert "val_check_interval" in line and "Lightning refused" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_missing_accelerator_is_one_line(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = refused(["fit", *base_args(cifar_dir, tmp_path / "runs", "--trainer.accelerator=gpu")], capsys)
    assert "Lightning refused these options: No supported gpu backend found" in line


def test_a_bug_keeps_its_traceback() -> None:
    from cnnbench.lightning_errors import explain

    assert explain(ValueError("a bug in our code")) is None
