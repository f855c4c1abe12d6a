"""``cnnbench``: the LightningCLI that trains, evaluates and predicts (the entry point is ``cnnbench.__main__``).

Besides Lightning's own options it adds ``--run_name``, ``--checkpoint.*`` and ``--wandb.*``. Where a run writes
is decided by ``cnnbench.runs``, what it logs to by ``cnnbench.csv_logger`` and ``cnnbench.wandb_run``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_info

from cnnbench import lightning_errors, resume, run_lock, runs
from cnnbench.callbacks import RunProgressBar, SaveRunConfig, run_callbacks
from cnnbench.checkpoint_io import AtomicCheckpointIO
from cnnbench.classifier import ImageClassifier
from cnnbench.compat import CheckpointOptionsHook
from cnnbench.config_files import check_yaml_arguments
from cnnbench.csv_logger import RunCSVLogger
from cnnbench.data import ImageDataModule
from cnnbench.errors import CheckpointNotFoundError
from cnnbench.launch import in_slurm_job, newest_state
from cnnbench.logger_args import expand_logger_names, place_in_run_folder
from cnnbench.models.registry import expand_model_short_names, model_name, spec_of
from cnnbench.models.summary import measure
from cnnbench.parser import CnnbenchArgumentParser
from cnnbench.report.groups import run_group
from cnnbench.wandb_run import FitRunSummary, WandbOptions, wandb_logger


class CnnbenchCLI(CheckpointOptionsHook):
    """LightningCLI with cnnbench's models, data module, run folders and checkpoints."""

    def __init__(self, args: ArgsType = None, run: bool = True) -> None:
        self.checkpoint: resume.CheckpointHparams | None = None  # that of --ckpt_path, once vetted
        self._run_id: str | None = None  # the SLURM job's run, once --ckpt_path auto has looked into it
        self.run_lock: run_lock.RunLock | None = None  # fit's hold on its run folder (run=True: released at the end)
        try:
            self._init(args, run)
        finally:
            if run and self.run_lock is not None:
                self.run_lock.release()

    def _init(self, args: ArgsType, run: bool) -> None:
        super().__init__(
            model_class=ImageClassifier,
            datamodule_class=LightningDataModule,  # ImageDataModule by default; any with the shape facts
            subclass_mode_data=True,
            subclass_mode_model=True,
            save_config_callback=SaveRunConfig,
            parser_class=CnnbenchArgumentParser,
            seed_everything_default=42,  # a fixed, visible seed rather than Lightning's random one
            # One device unless asked: Lightning's devices="auto" would make any multi-GPU box an N-rank DDP run
            # (N times the global batch, results no longer comparable with one GPU's).
            trainer_defaults={
                "default_root_dir": runs.DEFAULT_ROOT,
                "max_epochs": 10,
                "accelerator": "auto",
                "devices": 1,
            },
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
        for name in ("num_classes", "in_channels", "image_size"):  # shape facts: the data's, never a config's
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.add_argument("--run_name", type=str | None, help="Run group folder name (default: <dataset>-<model>).")
        parser.add_class_arguments(runs.CheckpointOptions, "checkpoint")
        parser.add_class_arguments(WandbOptions, "wandb")
        parser.set_defaults({"data": {"class_path": f"{ImageDataModule.__module__}.{ImageDataModule.__name__}"}})

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        args = sys.argv[1:] if args is None else args
        if isinstance(args, list):
            check_yaml_arguments(args)  # a YAML error names its file and line (jsonargparse's names no file)
            self.config = parser.parse_args(expand_logger_names(expand_model_short_names(args)))
        else:  # a dict or Namespace of options
            self.config = parser.parse_object(args)

    def _options(self) -> Namespace:
        """The options of this subcommand (all of them, when the CLI runs no subcommand)."""
        return self.config[self.config.subcommand] if self.config.get("subcommand") else self.config

    def _model_name(self) -> str:
        model = self._options()["model"]
        return model_name(model["class_path"], model.get("init_args"))

    def _dataset(self) -> str:
        return runs.dataset_name(self._options()["data"])

    def _group_dir(self) -> Path:
        options = self._options()
        root = Path(options["trainer"].get("default_root_dir") or runs.DEFAULT_ROOT)
        return root / runs.run_name(self._dataset(), self._model_name(), options["run_name"])

    def resolve_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path`` (``auto``, ``last``, ``best`` or a file) and vet the checkpoint before anything runs.

        The checkpoint must be readable and hold this model. Its model options then replace the config's
        (a resumed run goes on as it started; Lightning would do this silently), each change printed.
        """
        subcommand, options = self.config.get("subcommand"), self._options()
        requested = options.get("ckpt_path")
        if not subcommand or requested is None:
            return
        if requested == "auto" and subcommand != "fit":
            raise CheckpointNotFoundError(f"--ckpt_path auto resumes a fit; for {subcommand} use best, last or a file.")
        path = self._slurm_job_state() if requested == "auto" and in_slurm_job() else self._resolve(str(requested))
        options["ckpt_path"] = str(path) if path else None
        if path is not None:
            if subcommand == "fit":
                lightning_errors.check_resume_length(path, options["trainer"].get("max_epochs"))
            self._adopt_checkpoint_options(path)

    def _slurm_job_state(self) -> Path | None:
        """What a (requeued) SLURM job resumes: the newest state in its own run folder, never another run's.

        Lightning's ``hpc_ckpt_N.ckpt`` of a requeue signal can be newer than ``last.ckpt``: the one with the most
        steps wins (a concrete file given to Lightning bypasses its own choice of the hpc checkpoint).
        """
        self._run_id = runs.new_run_id(self._group_dir())
        run_dir = self._group_dir() / self._run_id
        path = newest_state(run_dir, run_dir / runs.CHECKPOINT_DIR / runs.LAST_NAME)
        if path is None:
            rank_zero_info(f"cnnbench: --ckpt_path auto: no checkpoint of this SLURM job in {run_dir} yet; "
                           "starting a new run there.")  # fmt: skip
        return path

    def _resolve(self, requested: str) -> Path | None:
        try:
            return resume.resolve_checkpoint("last" if requested == "auto" else requested, self._group_dir())
        except CheckpointNotFoundError:
            if requested != "auto":
                raise
            rank_zero_info(f"cnnbench: --ckpt_path auto: no earlier run with a last.ckpt under {self._group_dir()}; "
                           "starting a new run.")  # fmt: skip
            return None

    def _adopt_checkpoint_options(self, path: Path) -> None:
        self.checkpoint = held = resume.CheckpointHparams.read(path)
        held_model = model_name(held.class_path, held.model) if held.class_path else "an unknown model"
        if held_model != self._model_name():
            wanted = resume.TrainedOn(self._model_name(), self._dataset(), None, None)
            resume.check_trained_on(path, held.trained_on(held_model, self._dataset()), wanted)
        adopted, changed = held.options_to_adopt(dict(self._options()["model"].get("init_args") or {}))
        if changed:
            rank_zero_info(f"cnnbench: {path.name} sets the model options it was trained with: {', '.join(changed)}")
        model = {"class_path": held.class_path or self._options()["model"]["class_path"], "init_args": adopted}
        self.config = self.parser.parse_object({self.config.subcommand: {"model": model}}, self.config)

    def before_instantiate_classes(self) -> None:
        options = self._options()
        checkpoint = Path(options["ckpt_path"]) if options.get("ckpt_path") else None
        self.run_dir, self.log_dir = runs.run_folders(
            self._group_dir(), self.config.get("subcommand", "fit"), checkpoint, self._run_id
        )
        if self.config.get("subcommand") == "fit" and checkpoint and runs.run_dir_of(checkpoint):
            rank_zero_info(f"cnnbench: resuming run {self.run_dir} from {checkpoint}")
        trainer = options["trainer"]
        if isinstance(trainer.get("logger"), (list, Namespace)):  # --trainer.logger classes, not true/false
            trainer["logger"] = [place_in_run_folder(logger, self.log_dir) for logger in _as_list(trainer["logger"])]

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        options, data = self._options(), self.datamodule
        if self.checkpoint is not None:  # the data's side of the vetting, now that the data module says it
            held = self.checkpoint.trained_on(self._model_name(), self._dataset())
            wanted = resume.TrainedOn(held.model, self._dataset(), data.in_channels, data.image_size)
            resume.check_trained_on(Path(options["ckpt_path"]), held, wanted)
        runs.check_writable(self.log_dir)
        if self.config.get("subcommand", "fit") == "fit" and runs.is_global_zero():
            self.run_lock = run_lock.acquire(self.run_dir)  # one writer per run folder, until this process ends
        given = (self.config_init[self.subcommand] if self.subcommand else self.config_init)["trainer"]
        subcommand = self.config.get("subcommand", "fit")
        callbacks = _as_list(given.get("callbacks"))
        if given.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(RunProgressBar())  # before cnnbench's: it stops before the fit summary is printed
        # The network as configured (its widths too), not the registry's default: the report's FLOPs read this.
        hp = self.model.hparams
        info = measure(self.model.backbone, self.model.model_name, hp.in_channels, hp.image_size)
        size = {"name": info.name, "params": info.params, "mflops": round(info.mflops, 2)}
        self.save_config_kwargs["model_size"] = {f"model/{key}": value for key, value in size.items()}
        callbacks += run_callbacks(subcommand, self.run_dir, self.log_dir, data, options["checkpoint"], size)
        model = options["model"]
        spec = spec_of(model["class_path"], model.get("init_args"))
        # W&B's group is the report's: from the config as config.yaml has it (SaveRunConfig dumps it the same way).
        dump = self._parser(self.subcommand).dump(options, skip_none=False) if options["wandb"].enabled else None
        group = run_group(self.run_dir, yaml.safe_load(dump)) if dump else None
        wandb = wandb_logger(options["wandb"], self.run_dir, self._model_name(), self._dataset(),
                             spec.family_name if spec else None,
                             configs=[str(c) for c in _as_list(options.get("config"))], log_dir=self.log_dir,
                             group=group, job_type=subcommand)  # fmt: skip
        if wandb and group and subcommand == "test":
            callbacks.append(FitRunSummary(wandb, self.run_dir, group))
        loggers = [RunCSVLogger(self.log_dir), *[x for x in _as_list(given.get("logger")) if isinstance(x, Logger)]]
        loggers += [wandb] if wandb else []
        plugins = _as_list(given.get("plugins"))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        kwargs.update(default_root_dir=str(self.run_dir), callbacks=callbacks, logger=loggers, plugins=plugins)
        if given.get("benchmark") is None and not given.get("deterministic"):
            kwargs["benchmark"] = True  # cuDNN's autotuner: every batch has the same shape, so tuning once pays
        if torch.cuda.is_available() and str(given.get("precision") or "32").startswith("32"):
            # fp32 on tensor-core GPUs: choose the matmul precision (TF32 unless deterministic), never inherit it.
            torch.set_float32_matmul_precision("highest" if given.get("deterministic") else "high")
        trainer = super().instantiate_trainer(**kwargs)
        return trainer


def _as_list(value: Any) -> list[Any]:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
