"""Errors that mean "the user must change something": the CLI prints them as one line, no traceback."""


class CnnbenchError(Exception):
    """Base class for errors caused by bad input (config, data folder, checkpoint)."""


class DatasetNotFoundError(CnnbenchError):
    """The dataset files are missing and could not be downloaded."""


class CheckpointNotFoundError(CnnbenchError):
    """A checkpoint asked for with ``--ckpt_path`` does not exist."""
