"""``cnnbench``: the LightningCLI that trains, evaluates and predicts.

Besides Lightning's own options it adds ``--run_name``, ``--checkpoint.*`` and ``--wandb.*``, and it
decides where each run writes: ``<default_root_dir>/<run_name>/<run_id>/`` for ``fit`` (or the run
folder of the checkpoint it resumes), and a ``<subcommand>-<time>/`` folder inside the evaluated
run for ``validate``/``test``/``predict``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ProgressBar, RichProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

import cnnbench.models  # noqa: F401  (registers the model classes for subclass mode)
from cnnbench.callbacks import (
    EpochThroughput,
    LatestCheckpoint,
    PredictionCSVWriter,
    RNGStateCheckpoint,
    SaveRunConfig,
    TestFigures,
    best_checkpoint,
)
from cnnbench.checkpoint_io import AtomicCheckpointIO, load_checkpoint_file
from cnnbench.classifier import ImageClassifier, model_classes
from cnnbench.data import ImageDataModule
from cnnbench.data.datasets import DATASETS
from cnnbench.errors import CheckpointError, CheckpointNotFoundError, CnnbenchError
from cnnbench.loggers import RunCSVLogger
from cnnbench.parser import CnnbenchArgumentParser
from cnnbench.runs import CHECKPOINT_DIR, new_run_id, resolve_checkpoint, run_dir_of


@dataclass
class CheckpointOptions:
    """Checkpointing of ``fit``.

    Args:
        save_top_k: How many of the best checkpoints (by ``val/acc``) to keep.
        last_every_n_steps: Also refresh ``last.ckpt`` every this many optimizer steps (0: epoch ends only).
    """

    save_top_k: int = 1
    last_every_n_steps: int = 500


@dataclass
class WandbOptions:
    """Weights & Biases logging (off unless enabled; set WANDB_MODE=offline to log without a server).

    Args:
        enabled: Log to W&B besides metrics.csv.
        project: W&B project.
        entity: W&B entity (user or team); None uses the default.
        tags: Extra tags of the run.
        log_model: Upload checkpoints as W&B artifacts (needs W&B online; ignored offline).
    """

    enabled: bool = False
    project: str = "cnnbench"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    log_model: bool = False


def model_variants() -> dict[str, tuple[type[ImageClassifier], dict[str, Any]]]:
    """Registry name (``resnet18``) -> (LightningModule class, the init arguments that select it)."""
    return {name: (cls, init_args) for cls in model_classes() for name, init_args in cls.variants.items()}


def variant_name(class_path: str | None, init_args: Any) -> str | None:
    """The registry name of a model given by class path and init arguments (None if it is no registered one)."""
    args = dict(init_args or {})
    module, _, attr = (class_path or "").rpartition(".")
    try:
        model_class = getattr(importlib.import_module(module), attr) if module else None
    except (ImportError, AttributeError):
        return None
    for name, (cls, selecting) in model_variants().items():
        if cls is model_class and all(
            args.get(key, default) == value
            for key, value in selecting.items()
            for default in [inspect.signature(cls).parameters[key].default]
        ):
            return name
    return None


def expand_model_short_names(args: list[str]) -> list[str]:
    """Rewrite ``--model resnet18`` (a registry name) to the class and init arguments jsonargparse understands.

    The result is a JSON value, ``{"class_path": ..., "init_args": {"depth": 18}}``; jsonargparse keeps the
    other init arguments of an earlier ``--config`` when the class is the same.
    """
    variants = model_variants()

    def expand(value: str) -> str:
        if value not in variants:
            return value
        cls, init_args = variants[value]
        return json.dumps({"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args})

    out: list[str] = []
    for i, arg in enumerate(args):
        if arg.startswith("--model="):
            arg = "--model=" + expand(arg.split("=", 1)[1])
        elif i > 0 and args[i - 1] == "--model":
            arg = expand(arg)
        out.append(arg)
    return out


class CnnbenchCLI(LightningCLI):
    """LightningCLI with cnnbench's models, data module, run folders and checkpoints."""

    def __init__(self, args: ArgsType = None, run: bool = True) -> None:
        super().__init__(
            model_class=ImageClassifier,
            datamodule_class=ImageDataModule,
            subclass_mode_model=True,
            save_config_callback=SaveRunConfig,
            parser_class=CnnbenchArgumentParser,
            seed_everything_default=42,  # a fixed, visible seed rather than Lightning's random one
            trainer_defaults={"default_root_dir": "checkpoints", "max_epochs": 10},
            auto_configure_optimizers=False,  # the model's configure_optimizers holds the recipe
            # No abbreviations: a misspelled prefix such as --trainer.max_epoch must fail, not match max_epochs.
            parser_kwargs={
                "description": "Train, evaluate and compare classic CNNs ('cnnbench models' lists the model zoo).",
                "allow_abbrev": False,
            },
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in (
            ("num_classes", "num_classes"),
            ("in_channels", "in_channels"),
            ("image_size", "input_size"),
        ):
            parser.link_arguments(f"data.{source}", f"model.init_args.{target}", apply_on="instantiate")
        parser.add_argument(
            "--run_name", type=str | None, default=None, help="Run group folder name (default: <dataset>-<model>)."
        )
        parser.add_class_arguments(CheckpointOptions, "checkpoint")
        parser.add_class_arguments(WandbOptions, "wandb")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, list):
            self.config = parser.parse_args(expand_model_short_names(args))
        else:  # a dict or Namespace of options
            self.config = parser.parse_object(args)

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path`` (``auto``, ``last``, ``best`` or a file) and vet the checkpoint before anything runs.

        The checkpoint must be readable and hold this model and dataset. Its model options then replace the
        config's (a resumed run goes on as it started; Lightning would do this silently), each change printed.
        """
        subcommand = self.config.get("subcommand")
        if not subcommand or self.config[subcommand].get("ckpt_path") is None:
            return
        config = self.config[subcommand]
        requested = str(config["ckpt_path"])
        if requested == "auto" and subcommand != "fit":
            raise CheckpointNotFoundError(f"--ckpt_path auto resumes a fit; for {subcommand} use best, last or a file.")
        group_dir = Path(config["trainer"].get("default_root_dir") or "checkpoints") / self._run_name(config)
        try:
            path = resolve_checkpoint("last" if requested == "auto" else requested, group_dir)
        except CheckpointNotFoundError:
            if requested != "auto":
                raise
            path = None
            rank_zero_info(
                f"cnnbench: --ckpt_path auto: no earlier run with a last.ckpt under {group_dir}; starting a new run."
            )
        config["ckpt_path"] = str(path) if path else None
        if path is not None:
            self._adopt_checkpoint_options(config, path)

    def _adopt_checkpoint_options(self, config: Namespace, path: Path) -> None:
        checkpoint = load_checkpoint_file(path, weights_only=True, mmap=True)  # only its hparams are read here
        hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k != "_instantiator"}
        class_path = hparams.pop("_class_path", None)
        data_hparams = checkpoint.get("datamodule_hyper_parameters", {})
        held = (
            variant_name(class_path, hparams) or class_path or "an unknown model",
            data_hparams.get("dataset", "an unknown dataset"),
            hparams.get("in_channels"),
            hparams.get("input_size"),
        )
        data = config["data"]
        spec = DATASETS[data["dataset"]]
        wanted = (
            self._model_name(config),
            data["dataset"],
            1 if data["grayscale"] else spec.channels,
            data["image_size"] or spec.image_size,
        )
        if held != wanted:
            raise CheckpointError(
                f"{path} holds {held[0]} trained on {held[1]} ({held[2]}x{held[3]}x{held[3]} inputs), but this run "
                f"builds {wanted[0]} on {wanted[1]} ({wanted[2]}x{wanted[3]}x{wanted[3]}). Use that run's config "
                f"(--model {held[0]} --data.dataset {held[1]} ...) or a checkpoint of this model."
            )
        # The shape arguments are linked from the data module and already agree (checked above); how the model
        # runs (memory layout, compilation) is this run's choice, not part of what was trained.
        kept_from_config = {"num_classes", "in_channels", "input_size", "channels_last", "compile"}
        options = {k: v for k, v in hparams.items() if k not in kept_from_config}
        current = dict(config["model"].get("init_args") or {})
        changed = [
            f"{k}={v!r} (config: {current[k]!r})" for k, v in options.items() if k in current and current[k] != v
        ]
        if changed:
            rank_zero_info(f"cnnbench: {path.name} sets the model options it was trained with: {', '.join(changed)}")
        update = {"model": {"class_path": class_path or config["model"]["class_path"], "init_args": options}}
        self.config = self.parser.parse_object({self.config["subcommand"]: update}, self.config)

    @staticmethod
    def _model_name(config: Namespace) -> str:
        model = config["model"]
        return variant_name(model["class_path"], model.get("init_args")) or str(model["class_path"]).rsplit(".", 1)[-1]

    def _run_name(self, config: Namespace) -> str:
        return config["run_name"] or f"{config['data']['dataset']}-{self._model_name(config)}"

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        subcommand = self.subcommand or "fit"
        trainer_config = config["trainer"]
        run_name = config["run_name"] or f"{self.datamodule.dataset}-{self.model.model_name}"
        self.run_dir, self.log_dir = self._run_folders(config, subcommand, run_name)

        callbacks = _as_list(trainer_config.get("callbacks")) + self._run_callbacks(config, subcommand)
        if trainer_config.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(RichProgressBar())

        loggers: list[Logger] = [RunCSVLogger(save_dir=self.log_dir.parent, name="", version=self.log_dir.name)]
        loggers += [x for x in _as_list(trainer_config.get("logger")) if isinstance(x, Logger)]
        wandb_logger = self._wandb_logger(config["wandb"], run_name, self.run_dir)
        if wandb_logger is not None:
            loggers.append(wandb_logger)

        plugins = _as_list(trainer_config.get("plugins"))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())

        kwargs.update(default_root_dir=str(self.run_dir), callbacks=callbacks, logger=loggers, plugins=plugins)
        if trainer_config.get("benchmark") is None and not trainer_config.get("deterministic"):
            kwargs["benchmark"] = True  # cuDNN's autotuner: every batch has the same shape, so tuning once pays
        return super().instantiate_trainer(**kwargs)

    def _run_folders(self, config: Namespace, subcommand: str, run_name: str) -> tuple[Path, Path]:
        """(run folder, log folder). Also resolves ``--ckpt_path last|best`` to the file it names.

        ``fit`` logs into a new run folder, or into the folder of the checkpoint it resumes;
        the other subcommands log into ``<subcommand>-<time>/`` inside the run they evaluate.
        """
        root = Path(config["trainer"].get("default_root_dir") or "checkpoints")
        checkpoint = Path(config["ckpt_path"]) if config.get("ckpt_path") else None  # resolved by _parse_ckpt_path
        run_dir = run_dir_of(checkpoint) if checkpoint else None
        if subcommand == "fit" and run_dir is not None:
            rank_zero_info(f"cnnbench: resuming run {run_dir} from {checkpoint}")
        run_dir = run_dir or root / run_name / new_run_id()
        log_dir = run_dir if subcommand == "fit" else run_dir / f"{subcommand}-{time.strftime('%Y%m%d-%H%M%S')}"
        _check_writable(log_dir)
        return run_dir, log_dir

    def _run_callbacks(self, config: Namespace, subcommand: str) -> list[Callback]:
        """The callbacks cnnbench adds to the user's: checkpoints for ``fit``, a CSV writer for ``predict``."""
        if subcommand == "fit":
            options: CheckpointOptions = config["checkpoint"]
            ckpt_dir = self.run_dir / CHECKPOINT_DIR
            return [
                EpochThroughput(),
                RNGStateCheckpoint(),
                best_checkpoint(ckpt_dir, options.save_top_k),
                LatestCheckpoint(ckpt_dir, options.last_every_n_steps),
            ]
        if subcommand == "predict":
            return [PredictionCSVWriter(self.log_dir / "predictions.csv", self.datamodule.classes)]
        if subcommand == "test":
            return [TestFigures(self.log_dir, self.datamodule.classes)]
        return []

    def _wandb_logger(self, options: WandbOptions, run_name: str, run_dir: Path) -> Logger | None:
        if not options.enabled:
            return None
        if os.environ.get("WANDB_MODE") == "disabled":
            rank_zero_info("cnnbench: W&B is enabled in the config but WANDB_MODE=disabled; logging to CSV only.")
            return None
        from lightning.pytorch.loggers import WandbLogger

        # One W&B run per run folder: the id is derived from the folder, so a resumed run continues it.
        run_id = re.sub(r"[^A-Za-z0-9_-]", "-", f"{run_name}-{run_dir.name}")
        model, dataset = self.model.model_name, self.datamodule.dataset
        family = type(self.model).__module__.rsplit(".", 1)[-1]  # the model file: alexnet, resnet, ...
        configs = [Path(str(c)) for c in _as_list(self.config[self.subcommand or "fit"].get("config"))]
        recipes = [f"recipe:{c.parent.name}/{c.stem}" for c in configs if c.parent.name != "logger"]
        log_model = options.log_model and os.environ.get("WANDB_MODE", "online") not in ("offline", "dryrun")
        if options.log_model and not log_model:
            rank_zero_info("cnnbench: --wandb.log_model needs W&B online; checkpoints stay in the run folder only.")
        return WandbLogger(
            log_model=log_model,
            project=options.project,
            entity=options.entity,
            name=f"{model}-{dataset}-{run_dir.name.rsplit('-', 1)[-1]}",
            id=run_id,
            resume="allow",
            save_dir=str(run_dir),
            group=dataset,
            tags=list(dict.fromkeys([model, family, dataset, *recipes, *options.tags])),
        )


def _check_writable(folder: Path) -> None:
    """Fail before training, not at the first checkpoint, when the run folder cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CnnbenchError(
            f"cannot write the run folder {folder} ({exc.strerror or exc}); pick a writable --trainer.default_root_dir."
        ) from exc


def _as_list(value: Any) -> list[Any]:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def list_models_command(args: list[str]) -> None:
    """``cnnbench models``: the model zoo with parameter counts and FLOPs at a dataset's input shape."""
    import argparse

    from cnnbench.models.summary import model_table

    parser = argparse.ArgumentParser(prog="cnnbench models", description=list_models_command.__doc__)
    parser.add_argument("names", nargs="*", help="Models to show (default: all).")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="cifar10", help="Input shape to count for.")
    options = parser.parse_args(args)
    unknown = sorted(set(options.names) - set(model_variants()))
    if unknown:
        raise CnnbenchError(f"unknown model(s) {', '.join(unknown)}; run 'cnnbench models' to list them")
    print(model_table(options.dataset, options.names or None))


def main(args: ArgsType = None) -> None:
    """Console entry point: bad input ends with one line on stderr and exit status 2."""
    argv = sys.argv[1:] if args is None else args
    try:
        if isinstance(argv, list) and argv[:1] == ["models"]:
            list_models_command(argv[1:])
        elif isinstance(argv, list) and argv[:1] == ["export"]:
            from cnnbench.export import export_command

            export_command(argv[1:])
        elif isinstance(argv, list) and argv[:1] == ["report"]:
            from cnnbench.report.command import report_command

            report_command(argv[1:])
        else:
            CnnbenchCLI(args=args)
    except SIGTERMException:
        # Lightning stopped after a batch; LatestCheckpoint saved it. 128 + 15: the shell's code for SIGTERM.
        print("cnnbench: stopped by SIGTERM", file=sys.stderr)
        raise SystemExit(143) from None
    except Exception as exc:
        err = _user_error(exc)
        if err is None:
            raise
        print(f"cnnbench: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _user_error(exc: BaseException) -> CnnbenchError | None:
    """The CnnbenchError behind ``exc``, if any (jsonargparse re-raises errors of class instantiation)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CnnbenchError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


if __name__ == "__main__":
    main()
