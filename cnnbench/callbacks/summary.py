"""What a ``fit`` did, printed when it ends: the run folder, the best and last checkpoints, and what to run next."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback

from cnnbench.callbacks.checkpoints import LatestCheckpoint
from cnnbench.runs import BEST_PATTERN


def duration(seconds: float) -> str:
    """``42.1 s``, ``12 min 20 s`` or ``3 h 05 min``: the wall time as a user reads it."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if it exists and holds nothing; whether it did."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        return True
    return False


class EmptyFolderCleanup(Callback):
    """Removes the log folder of a ``validate``/``test``/``predict`` that fails before writing into it (missing data
    files, say), so a failed command leaves the run folder as it found it."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero:
            remove_if_empty(self.folder)


class FitSummary(Callback):
    """Prints (on rank zero, to stdout) the summary of a fit that ends, also by a planned stop (not on a crash).

    The next commands name this run's files: ``--ckpt_path best``/``last`` would pick the newest run of the
    group, which is another run once the same config has been trained again. The config is the run's own
    latest ``config.yaml`` (``config.resume-N.yaml`` after a resume): it holds every option the run was given.

    Args:
        run_dir: The run folder.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._start = time.perf_counter()  # built with the trainer: the wall time includes loading the data
        self._text: str | None = None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            self._text = self.summary(trainer, time.perf_counter() - self._start)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        # A fit that fails before writing anything (a value the data files refuse, such as --data.val_size above a
        # smaller train folder's size) leaves no empty run folder behind; a folder with any file in it is kept.
        if trainer.is_global_zero and remove_if_empty(self.run_dir):
            remove_if_empty(self.run_dir.parent)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Printed here, after the progress bar (added before this callback) has drawn its last frame and stopped.
        if self._text is not None:
            print(self._text, flush=True)
            self._text = None

    def summary(self, trainer: Trainer, seconds: float) -> str:
        """The text printed at the end of the fit (``seconds``: its wall time)."""
        best = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
        last = next((c.path for c in trainer.checkpoint_callbacks if isinstance(c, LatestCheckpoint)), None)
        best_path = Path(best.best_model_path) if best and best.best_model_path else None
        lines = [f"cnnbench: fit finished in {duration(seconds)}: run {_shown(self.run_dir)}"]
        if best_path is not None and best.best_model_score is not None:
            match = BEST_PATTERN.match(best_path.name)
            epoch = f" at epoch {int(match.group(1))} (0-based, as in metrics.csv)" if match else ""
            lines.append(f"  best {best.monitor} {float(best.best_model_score):.4f}{epoch}: {_shown(best_path)}")
        elif best is None:  # --data.val_size 0
            lines.append("  trained without validation: the last state is the final model (--ckpt_path best finds it)")
        else:
            lines.append("  no validation ran, so there is no best checkpoint")
        if last is not None and last.is_file():
            lines.append(f"  last checkpoint: {_shown(last)}")
        config = self._config_file(trainer)
        config_option = f" --config {_quote(config)}" if config else ""
        evaluated = best_path or (last if last is not None and last.is_file() else None)
        lines.append("next:")
        if evaluated is not None:
            lines.append(f"  cnnbench test{config_option} --ckpt_path {_quote(evaluated)}")
        lines.append(f"  cnnbench report {_quote(self.run_dir)}")
        if last is not None and last.is_file():
            more = "  # resume; add --trainer.max_epochs N to train longer"
            lines.append(f"  cnnbench fit{config_option} --ckpt_path {_quote(last)}{more}")
        return "\n".join(lines)

    def _config_file(self, trainer: Trainer) -> Path | None:
        saver = next((c for c in trainer.callbacks if isinstance(c, SaveConfigCallback)), None)
        path = self.run_dir / (saver.config_filename if saver else "config.yaml")
        return path if path.is_file() else None


def _quote(path: Path) -> str:
    return shlex.quote(_shown(path))


def _shown(path: Path) -> str:
    """The path relative to the working directory when it lies inside it (Lightning makes some absolute)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
