"""The few places cnnbench needs Lightning internals that have no public API.

Each is one small function here, so a Lightning upgrade that changes them breaks one file, and
``tests/test_compat.py`` says which one, instead of failing somewhere in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Iterable

from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningCLI


def should_update_logs(trainer: Trainer) -> bool:
    """Whether the loggers write at this step (Lightning's own ``log_every_n_steps`` test)."""
    return trainer._logger_connector.should_update_logs


def cluster_environment(trainer: Trainer) -> ClusterEnvironment:
    """The cluster environment (SLURM, torchelastic, ...) Lightning detected for this trainer."""
    return trainer._accelerator_connector.cluster_environment


# The callback hooks Lightning calls at every batch: each call goes to every callback, through a profiler context,
# about two microseconds apiece even for a hook that does nothing.
BATCH_HOOKS = (
    "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_before_zero_grad", "on_validation_batch_start", "on_validation_batch_end",
    "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start", "on_predict_batch_end",
)  # fmt: skip


def skip_inherited_batch_hooks(callbacks: Iterable[Callback]) -> None:
    """Spare each callback the per-batch calls of the hooks it inherits unchanged from ``Callback`` (no-ops).

    Lightning dispatches a callback hook only if the attribute is callable, so an instance attribute of None
    removes the call. With a dozen callbacks that is most of the per-step cost of the callbacks of a small model.
    """
    for callback in callbacks:
        for name in BATCH_HOOKS:
            if getattr(type(callback), name, None) is getattr(Callback, name):
                setattr(callback, name, None)


class CheckpointOptionsHook(LightningCLI):
    """LightningCLI whose ``--ckpt_path`` handling is the subclass's ``resolve_ckpt_path``.

    Lightning's own (``_parse_ckpt_path``, no public hook) replaces the config's model options with the
    checkpoint's, silently, between parsing and instantiation; cnnbench vets the checkpoint there instead
    and says which options it takes over.
    """

    def _parse_ckpt_path(self) -> None:
        self.resolve_ckpt_path()

    def resolve_ckpt_path(self) -> None:
        raise NotImplementedError


def pending_train_row(trainer: Trainer) -> tuple[int, dict[str, float]] | None:
    """(step, metrics) of the row Lightning logs right after the current training hook, or None if it logs none.

    Lightning logs a training step's metrics after its ``on_train_batch_end`` hooks, and an epoch's after its
    ``on_train_epoch_end`` hooks, where checkpoints are written: the row a checkpoint must carry (a kill between the
    two would lose it). The same computation as Lightning's ``update_train_step_metrics`` / ``..._epoch_metrics``.
    """
    connector, loop = trainer._logger_connector, trainer.fit_loop
    if not trainer.training or trainer._results is None:
        return None
    if connector._first_loop_iter is None:  # the epoch has ended: its epoch-level metrics, at its last step
        step = loop.epoch_loop._batches_that_stepped - 1
    elif loop._should_accumulate() or not connector.should_update_logs:
        return None
    else:
        step = loop.epoch_loop._batches_that_stepped
    metrics = connector.metrics["log"]
    if not metrics:
        return None
    row = {k: v.item() if hasattr(v, "item") else v for k, v in metrics.items()}
    row.setdefault("epoch", trainer.current_epoch)
    return step, row
