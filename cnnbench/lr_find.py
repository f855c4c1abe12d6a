"""``cnnbench lr_find --config C [fit options]``: Lightning's learning-rate range test on a config's recipe.

The model, data and optimizer are those ``cnnbench fit`` would build from the same arguments; the plot is saved
in a run folder of its own, and the suggestion printed as the option to pass to ``fit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnbench.errors import CnnbenchError


def lr_find_command(args: list[str]) -> None:
    """Run the range test, save ``lr_find.png`` (and ``lr_find.csv``), print the suggested LR."""
    parser = argparse.ArgumentParser(
        prog="cnnbench lr_find", description=__doc__, epilog="Other options are fit's (--config, --model.*, ...)."
    )
    parser.add_argument("--min_lr", type=float, default=1e-6, help="Lowest LR tried.")
    parser.add_argument("--max_lr", type=float, default=1.0, help="Highest LR tried.")
    parser.add_argument("--num_training", type=int, default=100, help="Optimizer steps of the test (one LR each).")
    options, fit_args = parser.parse_known_args(args)
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.tuner import Tuner

    from cnnbench.callbacks import FitSummary, LatestCheckpoint
    from cnnbench.cli import CnnbenchCLI

    name = [] if any(a.startswith("--run_name") for a in fit_args) else ["--run_name=lr_find"]
    cli = CnnbenchCLI(args=[*fit_args, *name], run=False)
    trainer = cli.trainer
    # The test's steps are no training to resume or report: no checkpoints, no fit summary.
    kept = [c for c in trainer.callbacks if not isinstance(c, (ModelCheckpoint, LatestCheckpoint, FitSummary))]
    trainer.callbacks = kept
    finder = Tuner(trainer).lr_find(
        cli.model, datamodule=cli.datamodule, min_lr=options.min_lr, max_lr=options.max_lr,
        num_training=options.num_training, update_attr=False,
    )  # fmt: skip
    if finder is None:
        raise CnnbenchError("lr_find ran no steps (is the training split empty?)")
    if not trainer.is_global_zero:  # under DDP every rank ran the test; one writes and prints
        return
    run_dir = Path(cli.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    figure = finder.plot(suggest=True)
    figure.savefig(run_dir / "lr_find.png", dpi=110)
    points = zip(finder.results["lr"], finder.results["loss"], strict=True)
    (run_dir / "lr_find.csv").write_text("lr,loss\n" + "".join(f"{lr},{loss}\n" for lr, loss in points))
    suggestion = finder.suggestion()
    print(f"cnnbench lr_find: plot {run_dir / 'lr_find.png'}")
    if suggestion is None:
        print("no suggestion: too few steps with a finite loss; raise --num_training or lower --max_lr")
        return
    print(f"suggested LR {suggestion:.3g}: cnnbench fit {' '.join(fit_args)} --model.init_args.lr {suggestion:.3g}")
