"""What the ``cnnbench`` command prints besides its runs: its version, and not the messages of Lightning and torch
that a user cannot act on.

Each filter matches one known message by its text, so every other warning still shows (an unreadable ``predict``
file, a logging interval longer than the epoch, a resume without a callback the run had). The ``cnnbench`` entry
point installs them; code that builds ``CnnbenchCLI`` itself keeps Lightning's full output.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from cnnbench import __version__

# Lightning's logger of rank_zero_info (its fabric twin too, in case the import order makes it the one in use).
LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")

# Lightning 2.6 advertises its cloud products (litlogger, litmodels) at INFO level on every run.
PROMOTION_PREFIX = "💡 Tip:"

UNACTIONABLE_WARNINGS = (
    # torch deprecated a helper that Lightning's own pytree code calls at every batch: nothing for a user to change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # Every run has a folder of its own, so the only fit that finds its checkpoint folder filled is a resume.
    r"Checkpoint directory .* exists and is not empty",
    # --data.val_size 0 asks for no validation: the data module hands Lightning no validation loader.
    r"Total length of `list` across ranks is zero",
)

# test/validate/predict --ckpt_path: the fit's callbacks (best checkpoint, RNG states) have nothing to restore
# outside a fit. A fit resumed without a callback it had still gets the warning: there it is the user's choice.
EVALUATION_WARNINGS = (r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",)


class _NoPromotions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PROMOTION_PREFIX)


def show_version(args: list[str]) -> None:
    """``cnnbench --version``."""
    print(f"cnnbench {__version__}")


def quiet_output(args: Any) -> None:
    """Install the filters for a run of ``cnnbench ARGS`` (a list, or a dict of options: no subcommand known).

    Installing them again changes nothing.
    """
    subcommand = args[0] if isinstance(args, list) and args else None
    for name in LIGHTNING_INFO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoPromotions) for f in logger.filters):
            logger.addFilter(_NoPromotions())
    patterns = UNACTIONABLE_WARNINGS + (EVALUATION_WARNINGS if subcommand in ("validate", "test", "predict") else ())
    for pattern in patterns:
        warnings.filterwarnings("ignore", message=pattern)  # an identical filter is replaced, not added twice
