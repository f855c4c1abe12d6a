"""Lightning's refusals of a user's options (``MisconfigurationException`` and its validation errors) as one line.

Lightning checks many option combinations only once the trainer is built or the fit starts (a resume with fewer
epochs than the run has done, ``--trainer.accelerator gpu`` on a machine without one, ``--trainer.val_check_interval``
beyond the epoch, ...). These are bad input like any other: the CLI prints the line this module gives and exits 2.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from lightning.fabric.utilities.exceptions import MisconfigurationException

from cnnbench.checkpoint_io import load_checkpoint_file
from cnnbench.errors import BadValueError

# Modules whose ValueError/TypeError means "this option's value is invalid": they validate the Trainer's arguments.
# Anything raised deeper (a model's forward, a data loader) is a bug or a crash and keeps its traceback.
_VALIDATORS = (
    "lightning/pytorch/trainer/trainer.py",
    "lightning/pytorch/trainer/setup.py",
    "lightning/pytorch/trainer/connectors/accelerator_connector.py",
    "lightning/pytorch/trainer/connectors/data_connector.py",
    "lightning/pytorch/loops/fit_loop.py",
    "lightning/fabric/utilities/device_parser.py",
    "lightning/fabric/accelerators/",
)


def _raised_in_validator(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    where = PurePath(last.tb_frame.f_code.co_filename).as_posix()
    return any(part in where for part in _VALIDATORS)


def explain(exc: BaseException) -> str | None:
    """One line for a Lightning refusal of the user's options, None for anything else (which keeps its traceback)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # jsonargparse wraps errors of class instantiation
        seen.add(id(current))
        message = " ".join(str(current).split())  # one line
        if isinstance(current, MisconfigurationException):
            return f"Lightning refused these options: {message}"
        if isinstance(current, (ValueError, TypeError)) and _raised_in_validator(current):
            return f"Lightning refused these options: {message}"
        current = current.__cause__ or current.__context__
    return None


def check_resume_length(checkpoint: Path, max_epochs: int | None) -> None:
    """Refuse to resume a run with a ``--trainer.max_epochs`` below the epochs it has already trained.

    Lightning refuses only ``max_epochs`` below the checkpoint's *completed* count (one less than the epochs
    trained, at an epoch-end save) and lets ``max_epochs`` one epoch short "resume" into a run that trains nothing.
    """
    if max_epochs is None or max_epochs < 0:
        return
    loops = load_checkpoint_file(checkpoint, weights_only=True, mmap=True).get("loops") or {}
    progress = (loops.get("fit_loop") or {}).get("epoch_progress", {}).get("current", {})
    done = int(progress.get("processed", 0))  # epochs whose training ended (a mid-epoch save: the full ones)
    if max_epochs < done:
        raise BadValueError(
            f"the run of {checkpoint} has already trained {done} epochs, more than --trainer.max_epochs {max_epochs}: "
            f"`cnnbench test --ckpt_path {checkpoint}` evaluates it; a --trainer.max_epochs larger than {done} "
            "trains on."
        )
