"""The few places cnnbench needs Lightning internals that have no public API.

Each is one small function here, so a Lightning upgrade that changes them breaks one file, and
``tests/test_compat.py`` says which one, instead of failing somewhere in the middle of a run.
"""

from __future__ import annotations

from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI


def should_update_logs(trainer: Trainer) -> bool:
    """Whether the loggers write at this step (Lightning's own ``log_every_n_steps`` test)."""
    return trainer._logger_connector.should_update_logs


def skip_per_batch_sigterm_broadcast(trainer: Trainer) -> None:
    """Turn off the broadcast of rank 0's SIGTERM flag that Lightning's training loop makes before every batch under
    DDP (and reads back with ``.item()``: a collective and a host-device sync per step). cnnbench's own agreement
    (``cnnbench.callbacks.stop_signals``) replaces it."""
    trainer.fit_loop.epoch_loop._broadcast_sigterm_tensor = lambda: None  # type: ignore[method-assign]


def request_sigterm_stop(trainer: Trainer) -> None:
    """Make Lightning stop as on SIGTERM: it ends the current training batch (logging it) and raises
    ``SIGTERMException``. Only the flag its own handler sets does that."""
    trainer._signal_connector.received_sigterm = True


def cluster_environment(trainer: Trainer) -> ClusterEnvironment:
    """The cluster environment (SLURM, torchelastic, ...) Lightning detected for this trainer."""
    return trainer._accelerator_connector.cluster_environment


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
