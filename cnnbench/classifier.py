"""The classifier base every architecture shares: loss, metrics, optimizer and LR schedule."""

from __future__ import annotations

from typing import Any, Literal

import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from cnnbench.compat import should_update_logs
from cnnbench.ema import WeightEMA
from cnnbench.lookahead import Lookahead
from cnnbench.metrics import (
    BestValue,
    PerImageMean,
    RunningAccuracy,
    load_global_train_means,
    save_global_train_means,
)
from cnnbench.optim import Decay, optimizer_config
from cnnbench.optim_muon import AuxName, IntFrom1To99
from cnnbench.ranges import NonNegativeFloatBelowOne, check_ranges
from cnnbench.tta import tta_logits

OptimizerName = Literal["sgd", "adam", "adamw", "muon"]


class ImageClassifier(LightningModule):
    """Base LightningModule: subclasses set ``self.backbone`` (an ``nn.Module`` mapping images to logits).

    ``num_classes``, ``in_channels`` and ``image_size`` are linked from the data module by the CLI,
    so configs never state them.

    Args:
        num_classes: Number of output classes.
        in_channels: Channels of the input images (1 for grayscale).
        image_size: Side of the (square) input images.
        optimizer: ``sgd`` (momentum, optional Nesterov), ``adam``, ``adamw`` or ``muon`` (``cnnbench.optim_muon``:
            conv filters and hidden linear weights by Muon with the ``muon_*`` options, the rest by ``muon_aux``
            with ``lr``, ``momentum``, ``nesterov`` and ``weight_decay``).
        lr: Peak learning rate (reached after warmup); with ``muon``, that of the parameters Muon does not update.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: Weight decay of conv/linear weights.
        decay_norm_and_bias: Also decay biases and normalization weights (off by default).
        norm_lr_scale: LR multiplier of the normalization layers' parameters (their weight decay, if any, is divided
            by it). airbench trains BatchNorm biases at 64 times the LR.
        lr_schedule: ``cosine`` or ``linear`` decay to ``min_lr_ratio`` after warmup (linear: the triangular
            one-cycle shape), or ``constant``.
        warmup_epochs: Linear warmup length in epochs (fractions allowed; 0 disables).
        min_lr_ratio: Final LR of the cosine as a fraction of ``lr``.
        label_smoothing: Label smoothing of the cross-entropy loss.
        channels_last: Keep weights and inputs in NHWC memory layout (faster convolutions on tensor-core
            GPUs and on CPUs with oneDNN).
        compile: Compile the backbone with ``torch.compile`` (in place: checkpoints keep their keys).
        flip_tta: Evaluate (validate, test, predict) on the mean logits of each image and its mirror image;
            for models trained with flips, a cheap accuracy gain at twice the evaluation cost.
        translate_tta: Also evaluate on two copies shifted by one pixel (diagonally up-left and down-right, with
            mirrored borders): the logits are half the image's, a quarter each shifted copy's (each with its
            mirror image under ``flip_tta``; three or six forward passes). For models trained with translations.
        ema_decay: Keep an exponential moving average of the weights (parameters and BatchNorm buffers), updated
            after every optimizer step with this decay (e.g. 0.999; 0 turns it off). Validation, the best
            checkpoint, ``test``, ``predict`` and ``export`` then use the averaged weights; a resume continues
            both (``cnnbench.ema``).
        lookahead_decay: Lookahead: every ``lookahead_every`` steps pull the weights back toward a slow copy of
            them, harder as training ends, and end on the slow copy (``cnnbench.lookahead``; airbench:
            0.95 ** 5 = 0.774 every 5 steps; 0 turns it off).
        lookahead_every: Optimizer steps between lookahead pulls.
        muon_lr: Peak LR of Muon's parameters (the schedule scales it as it scales ``lr``).
        muon_momentum: Muon's momentum (Nesterov as ``nesterov`` says).
        muon_weight_decay: Muon's decoupled weight decay (the weights shrink by ``muon_lr * decay`` a step).
        muon_ns_steps: Newton-Schulz iterations per update (torch's default 5; the CIFAR-10 speedruns use 3).
        muon_renorm_every: Rescale each Muon weight to norm sqrt(output channels) every this many steps
            (airbench94_muon: every step; 0: never).
        muon_renorm_every_final: With ``muon_renorm_every`` k > 0, let the period grow linearly over the run's
            schedule from k steps to this many (the 2025 CIFAR-10 speedrun: 2 to 17); 0: every k steps throughout.
        muon_aux: Optimizer of the parameters Muon does not update: ``sgd`` or ``adamw``.
        tta_uncertain_fraction: Run ``flip_tta``/``translate_tta`` only on this share of each evaluation batch, the
            images whose plain prediction is least confident; the others keep the plain prediction (``cnnbench.tta``;
            the 2025 CIFAR-10 speedrun: 0.25). 1: every image.
        tta_equal_weights: Average the ``translate_tta`` views alike (the 2025 speedrun) instead of the unshifted
            image's logits counting half and each shifted copy's a quarter (airbench).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        optimizer: OptimizerName = "sgd",
        lr: PositiveFloat = 0.05,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: NonNegativeFloat = 5e-4,
        decay_norm_and_bias: bool = False,
        norm_lr_scale: PositiveFloat = 1.0,
        lr_schedule: Decay = "cosine",
        warmup_epochs: NonNegativeFloat = 1.0,
        min_lr_ratio: float = 0.0,
        label_smoothing: NonNegativeFloatBelowOne = 0.0,
        channels_last: bool = False,
        compile: bool = False,
        flip_tta: bool = False,
        translate_tta: bool = False,
        ema_decay: NonNegativeFloatBelowOne = 0.0,
        lookahead_decay: NonNegativeFloatBelowOne = 0.0,
        lookahead_every: PositiveInt = 5,
        muon_lr: PositiveFloat = 0.02,
        muon_momentum: NonNegativeFloatBelowOne = 0.95,
        muon_weight_decay: NonNegativeFloat = 0.0,
        muon_ns_steps: IntFrom1To99 = 5,
        muon_renorm_every: NonNegativeInt = 0,
        muon_renorm_every_final: NonNegativeInt = 0,
        muon_aux: AuxName = "sgd",
        tta_uncertain_fraction: ClosedUnitInterval = 1.0,
        tta_equal_weights: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # The annotations' ranges (a subclass's options too), before anything reads them and before the CLI creates
        # the run folder.
        check_ranges(type(self), ImageClassifier, self.hparams, "--model.")
        self.backbone: nn.Module = nn.Identity()
        self.model_name = "identity"  # the registry name of the backbone; subclasses set both
        # Lets Lightning's model summary show each layer's output size and the FLOPs.
        self.example_input_array = torch.zeros(1, in_channels, image_size, image_size)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

        # No per-step host syncs: torchmetrics' NaN check and argument validation each read a value back from
        # the device. The losses are exact per-image means (a small last batch weighs what it holds).
        top5 = min(5, num_classes)
        self.train_loss, self.val_loss, self.test_loss = (PerImageMean() for _ in range(3))
        accuracy = {"num_classes": num_classes, "average": "micro", "validate_args": False}
        self.train_acc = RunningAccuracy()  # the per-step one: a comparison and two additions
        self.val_acc = MulticlassAccuracy(**accuracy)
        self.val_acc_top5 = MulticlassAccuracy(top_k=top5, **accuracy)
        self.test_acc = MulticlassAccuracy(**accuracy)
        self.test_acc_top5 = MulticlassAccuracy(top_k=top5, **accuracy)
        self.val_acc_best = BestValue()
        # Metric states are not in state_dict by default. The best accuracy must survive a resume, and so must
        # the running train loss/accuracy, so that an epoch resumed mid-way reports the whole epoch's means.
        for metric in (self.val_acc_best, self.train_loss, self.train_acc):
            metric.persistent(True)

    @property
    def backbone_kwargs(self) -> dict[str, int]:
        """The input/output shape arguments every backbone factory takes."""
        hp = self.hparams
        return {"num_classes": hp.num_classes, "in_channels": hp.in_channels, "image_size": hp.image_size}

    def configure_callbacks(self) -> list[Callback]:
        # Only fit averages: test, predict and export load the weights a checkpoint holds.
        hp = self.hparams
        if self.trainer.state.fn != TrainerFn.FITTING:
            return []
        callbacks: list[Callback] = [WeightEMA(hp.ema_decay)] if hp.ema_decay else []
        if hp.lookahead_decay:
            callbacks.append(Lookahead(hp.lookahead_decay, hp.lookahead_every))
        return callbacks

    def configure_model(self) -> None:
        if self.hparams.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        if self.hparams.compile and not getattr(self, "_backbone_compiled", False):
            self.backbone.compile()
            self._backbone_compiled = True

    def forward(self, x: Tensor) -> Tensor:
        # With --trainer.precision 16-true or bf16-true the weights are half precision, but Lightning converts only
        # the loader's batch (the fast path's indices) and the fast path then makes float32 images; the model
        # summary's example_input_array is float32 too. Inputs follow the weights.
        if x.is_floating_point() and x.dtype != self.dtype:  # Lightning keeps self.dtype as the weights' dtype
            x = x.to(self.dtype)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def evaluation_logits(self, images: Tensor) -> Tensor:
        """Logits for evaluation: test-time augmentation as ``flip_tta`` and ``translate_tta`` say, on the
        ``tta_uncertain_fraction`` of the images least confident in their plain logits."""
        hp = self.hparams
        return tta_logits(self, images, hp.flip_tta, hp.translate_tta, hp.tta_uncertain_fraction, hp.tta_equal_weights)

    def on_train_epoch_start(self) -> None:
        # A checkpoint written at an epoch end holds that epoch's running sums (they are persistent); a new epoch
        # starts from zero. Lightning does not call this hook when it resumes in the middle of an epoch.
        self.train_loss.reset()
        self.train_acc.reset()

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        # (images, labels), or with MixUp/CutMix (images, hard labels, (N, C) soft targets): the loss takes the
        # soft targets (label smoothing applies to them too), the accuracy the hard labels of the unmixed images.
        images, labels, *soft = batch
        logits = self(images)
        # Soft targets stay float32, and so do the logits they meet: in bfloat16 a row of mixed targets no longer
        # sums to 1 (autocast's bf16 logits, or bf16-true's).
        loss = self.criterion(logits.float(), soft[0].float()) if soft else self.criterion(logits, labels)
        self.train_loss.update(loss.detach(), labels.numel())
        self.train_acc.update(logits.detach(), labels)
        # Each self.log call costs about a millisecond of Python on the CPU (Lightning copies its metadata), as much
        # as a small CNN's step: step values are logged only on the steps the loggers write (log_every_n_steps),
        # and the epoch means once, at the epoch end.
        if should_update_logs(self.trainer):
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
            self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: Literal["val", "test"]) -> Tensor:
        images, labels = batch
        logits = self.evaluation_logits(images)
        loss = self.criterion(logits, labels)
        mean_loss: PerImageMean = getattr(self, f"{stage}_loss")
        acc: MulticlassAccuracy = getattr(self, f"{stage}_acc")
        acc_top5: MulticlassAccuracy = getattr(self, f"{stage}_acc_top5")
        mean_loss.update(loss, labels.numel())
        acc.update(logits, labels)
        acc_top5.update(logits, labels)
        self.log(f"{stage}/loss", mean_loss, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", acc, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc_top5", acc_top5, on_epoch=True)
        return logits.argmax(dim=1)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a few batches of an untrained model: no best accuracy to record
            return
        # compute() here syncs across DDP ranks; Lightning resets val_acc after this hook.
        self.val_acc_best.update(self.val_acc.compute())
        # Already synced (val_acc is); sync_dist only keeps Lightning from warning under DDP.
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return {"preds": self._evaluate(batch, "test")}  # for the confusion matrix and prediction grid

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        probs = torch.softmax(self.evaluation_logits(images), dim=1)
        return {"preds": probs.argmax(dim=1), "probs": probs}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_global_train_means(checkpoint)  # under DDP: the saved sums are every rank's, resumed on rank 0 only

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_global_train_means(checkpoint)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        return optimizer_config(self, self.hparams, self.trainer, self.shifts_at_norm_lr())

    def shifts_at_norm_lr(self) -> list[Tensor]:
        """Parameters besides the normalization layers' that ``norm_lr_scale`` speeds up (a model's own shifts)."""
        return []
