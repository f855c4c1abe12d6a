"""Callbacks the CLI adds to every run: checkpoints, config saving, prediction writing."""

from cnnbench.callbacks.checkpoints import LatestCheckpoint, best_checkpoint
from cnnbench.callbacks.predictions import PredictionCSVWriter
from cnnbench.callbacks.rng import RNGStateCheckpoint
from cnnbench.callbacks.run_config import SaveRunConfig
from cnnbench.callbacks.test_figures import TestFigures
from cnnbench.callbacks.throughput import EpochThroughput

__all__ = [
    "EpochThroughput",
    "LatestCheckpoint",
    "PredictionCSVWriter",
    "RNGStateCheckpoint",
    "SaveRunConfig",
    "TestFigures",
    "best_checkpoint",
]
