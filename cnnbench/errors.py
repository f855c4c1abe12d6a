"""Errors that mean "the user must change something": the CLI prints them as one line, no traceback."""

from __future__ import annotations


class CnnbenchError(Exception):
    """Base class for errors caused by bad input (config, data folder, checkpoint)."""


class DatasetNotFoundError(CnnbenchError):
    """The dataset files are missing and could not be downloaded."""


class CheckpointNotFoundError(CnnbenchError):
    """A checkpoint asked for with ``--ckpt_path`` does not exist."""


class IncompatibleInputError(CnnbenchError, ValueError):
    """The data's images do not fit the chosen model (e.g. 32x32 images for the 224x224 AlexNet)."""


class BadValueError(CnnbenchError, ValueError):
    """An option's value is outside its valid range (``--data.batch_size 0``); the message names both."""


class DivergedError(CnnbenchError):
    """Training diverged (a non-finite loss or weights): the run stops before such a state is saved."""


class CheckpointError(CnnbenchError):
    """A checkpoint cannot be read or written, or does not belong to this model and dataset."""


class UntrustedCheckpointError(CheckpointError):
    """A checkpoint holds pickled objects other than tensors and plain data: loading it could run code."""


def user_error(exc: BaseException) -> CnnbenchError | None:
    """The CnnbenchError behind ``exc``, if any (jsonargparse re-raises errors of class instantiation)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CnnbenchError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
