"""What ``cnnbench`` prints: the summary of a fit, the files each command wrote, no noise, its version."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from PIL import Image

import cnnbench
from cnnbench.callbacks import RunProgressBar
from cnnbench.figures import save_curves
from tests.helpers.datasets import CIFAR_TEST
from tests.helpers.runs import base_args, column, main, read_metrics

# Lightning's promotions and the warnings a user can do nothing about (see cnnbench/console.py).
NOISE = ("💡", "litlogger", "litmodels", "callbacks used to create", "LeafSpec", "exists and is not empty", "v_num")


def paths_in(text: str, root: Path) -> list[Path]:
    """Every path under ``root`` the text names."""
    return [Path(p.rstrip(",")) for p in re.findall(re.escape(str(root)) + r"[^\s,]*", text)]


def everything_shown(capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture, recwarn) -> str:
    out, err = capfd.readouterr()
    return "\n".join([out, err, caplog.text, *(str(w.message) for w in recwarn)])


def test_version(capsys: pytest.CaptureFixture) -> None:
    main(["--version"])
    installed = importlib.metadata.version("cnnbench")
    assert capsys.readouterr().out == f"cnnbench {installed}\n" and cnnbench.__version__ == installed
    shell = subprocess.run([sys.executable, "-m", "cnnbench", "--version"], capture_output=True, text=True)
    assert (shell.returncode, shell.stdout) == (0, f"cnnbench {installed}\n")


def test_a_fit_says_what_it_did_and_its_next_commands_work(
    cifar_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture, recwarn
) -> None:
    root = tmp_path / "runs"
    main(["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=true")])
    shown = everything_shown(capfd, caplog, recwarn)
    (run_dir,) = (root / "cifar10-simple_cnn").iterdir()
    assert not [noise for noise in NOISE if noise in shown]

    summary = shown[shown.index("cnnbench: fit finished in") :].split("\n\n")[0]
    assert f"run {run_dir}\n" in summary
    val_acc = column(read_metrics(run_dir), "val/acc")
    best_acc = max(v for _, v in val_acc)
    best_epoch = [r["epoch"] for r in read_metrics(run_dir) if r.get("val/acc") and float(r["val/acc"]) == best_acc]
    assert f"best val/acc {best_acc:.4f} at epoch {best_epoch[0]} " in summary
    printed = paths_in(summary, tmp_path)
    assert printed and all(p.exists() for p in printed)
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    assert {best, run_dir / "checkpoints" / "last.ckpt", run_dir, run_dir / "config.yaml"} == set(printed)

    commands = {line.split()[1]: shlex.split(line.split("#")[0]) for line in summary.splitlines()
                if line.startswith("  cnnbench ")}  # fmt: skip
    assert sorted(commands) == ["fit", "report", "test"]
    # The commands run as printed: the test evaluates this run's best checkpoint, the fit resumes this run.
    main(commands["test"][1:])
    (test_dir,) = run_dir.glob("test-*")
    tested = everything_shown(capfd, caplog, recwarn)
    assert not [noise for noise in NOISE if noise in tested]
    (wrote,) = [line for line in tested.splitlines() if line.startswith("cnnbench: wrote ")]
    written = paths_in(wrote, tmp_path)
    assert sorted(p.name for p in written) == ["confusion_matrix.csv", "confusion_matrix.png", "predictions.png"]
    assert all(p.parent == test_dir and p.is_file() for p in written)
    main([*commands["fit"][1:], "--trainer.max_epochs=3"])
    resumed = everything_shown(capfd, caplog, recwarn)
    assert not [noise for noise in NOISE if noise in resumed]
    assert [r["epoch"] for r in read_metrics(run_dir) if r.get("val/acc")] == ["0", "1", "2"]
    assert f"--config {run_dir / 'config.resume-1.yaml'} " in resumed  # the next commands name the latest config


def test_test_figures_are_images_of_the_drawn_size(fitted, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir, root, _ = fitted
    main(["test", *base_args(data_dir, root, "--ckpt_path=best")])
    (wrote,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cnnbench: wrote ")]
    pngs = {p.name: p for p in paths_in(wrote, root) if p.suffix == ".png"}
    # The figures' sizes in inches (cnnbench/figures.py: 10 classes; up to 40 test images in 8 columns) at 110 dpi.
    rows = -(-min(40, CIFAR_TEST) // 8)
    expected = {"confusion_matrix.png": (1.0 + 0.62 * 10, 0.6 + 0.55 * 10), "predictions.png": (1.6 * 8, 1.75 * rows)}
    assert sorted(pngs) == sorted(expected)
    for name, (width, height) in expected.items():
        with Image.open(pngs[name]) as image:
            image.load()  # decodes every pixel: a truncated file fails here
            assert image.format == "PNG"
            assert image.size == pytest.approx((width * 110, height * 110), abs=1)
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # drawn, not blank


def test_predict_names_its_csv_and_keeps_actionable_warnings(
    fitted, tmp_path: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture, recwarn
) -> None:
    data_dir, root, _ = fitted
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "red.png")
    (folder / "broken.png").write_bytes(b"not an image")
    capfd.readouterr()
    main(["predict", *base_args(data_dir, root, "--ckpt_path=best", f"--data.predict_files=[{folder}]")])
    shown = everything_shown(capfd, caplog, recwarn)
    assert not [noise for noise in NOISE if noise in shown]
    assert re.search(r"skipped an unreadable file: .*broken\.png", shown)  # the user can fix this one
    (wrote,) = [line for line in shown.splitlines() if line.startswith("cnnbench: wrote ")]
    (csv_path,) = paths_in(wrote, root)
    assert csv_path.name == "predictions.csv" and csv_path.is_file() and wrote.endswith("(1 row)")


def test_the_progress_bar_shows_no_logger_version(tmp_path: Path) -> None:
    trainer = Trainer(logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_model_summary=False)
    assert "v_num" in RichProgressBar().get_metrics(trainer, LightningModule())  # what Lightning's bar shows
    assert "v_num" not in RunProgressBar().get_metrics(trainer, LightningModule())


class _RunWithoutSteps:
    """A run too short to have logged a per-step LR (fewer steps than --trainer.log_every_n_steps)."""

    label, steps_per_epoch = "short", 18.0

    def per_epoch(self, name: str) -> list[tuple[int, float]]:
        return [(0, 0.5)]

    def per_step(self, name: str) -> list[tuple[int, float]]:
        return []


def test_curves_of_a_short_run_draw_without_warnings(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about a legend with nothing in it
        path = save_curves([_RunWithoutSteps()], tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_progress_bar_redraws_ten_times_a_second_and_at_each_epochs_last_batch(monkeypatch) -> None:
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import RichProgressBar

    drawn: list[int] = []
    draw = lambda self, trainer, module, outputs, batch, batch_idx: drawn.append(batch_idx)  # noqa: E731
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", draw)
    bar, trainer = RunProgressBar(), SimpleNamespace(num_training_batches=10)
    clock = iter([0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.18, 0.21, 0.24, 0.25])  # one batch every 30 ms, then 10 ms
    bar._clock = lambda: next(clock)
    for batch_idx in range(10):
        bar.on_train_batch_end(trainer, None, None, None, batch_idx)
    assert drawn == [0, 4, 8, 9]  # at 0, 0.12 and 0.24 s (0.1 s apart at least), and the epoch's last batch
