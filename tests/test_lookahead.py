"""Lookahead (--model.lookahead_decay): the pull toward the slow weights, its schedule, the final copy, resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch import LightningModule
from torch import nn

from cnnbench.lookahead import Lookahead
from tests.helpers.runs import assert_same_tensors, fit_straight_and_resumed


class _Net(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))


def test_every_few_steps_the_weights_become_the_slow_copy_moved_toward_them() -> None:
    """Written out apart from the callback: slow <- slow + (1 - d)(w - slow), w <- slow, d = decay (t/T)^3, at
    steps 2, 4, ...; at the last step w <- slow as it is."""
    net, total, decay = _Net(), 10, 0.8
    trainer = SimpleNamespace(estimated_stepping_batches=total, num_training_batches=5, accumulate_grad_batches=1,
                              max_epochs=2, global_step=0)  # fmt: skip
    lookahead = Lookahead(decay, every=2)
    lookahead.on_train_start(trainer, net)
    weight = net.backbone[0].weight
    slow = None
    for step in range(1, total + 1):
        with torch.no_grad():
            weight.add_(1.0)  # an optimizer step
        before = weight.detach().clone()
        trainer.global_step = step
        lookahead.on_train_batch_end(trainer, net, None, None, step - 1)
        if step % 2 and step != total:
            assert torch.equal(weight, before), step  # between pulls the weights are the optimizer's
            continue
        if slow is None:
            slow = before.clone()  # the slow copy starts as the weights of the first pull
        d = 1.0 if step == total else decay * (step / total) ** 3
        slow = slow + (1 - d) * (before - slow)
        assert torch.allclose(weight, slow, atol=1e-6), step
    running_mean = net.backbone[1].running_mean
    assert torch.equal(lookahead._slow["1.running_mean"], running_mean)  # buffers follow too
    assert "num_batches_tracked" not in "".join(lookahead._slow)  # integer state is left alone


def test_lookahead_resumes_mid_epoch_to_the_same_weights_and_ends_on_the_slow_copy(
    cifar_dir: Path, tmp_path: Path
) -> None:
    common = (
        "--model.lookahead_decay=0.77",
        "--model.lookahead_every=2",
        "--model.warmup_epochs=0",
        "--trainer.deterministic=true",
        "--checkpoint.last_every_n_steps=1",
        "--trainer.max_epochs=3",
    )
    straight, resumed = fit_straight_and_resumed(cifar_dir, tmp_path, common, stop="--trainer.max_steps=7")
    assert resumed.trainer.global_step == straight.trainer.global_step == 15
    assert_same_tensors(straight.model.state_dict(), resumed.model.state_dict())
    (lookahead,) = [c for c in straight.trainer.callbacks if isinstance(c, Lookahead)]
    for name, slow in lookahead._slow.items():
        assert torch.equal(straight.model.backbone.state_dict()[name], slow), name
    last = torch.load(straight.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert torch.equal(last["state_dict"]["backbone.0.weight"], lookahead._slow["0.weight"])


def test_lookahead_options_out_of_range_are_refused() -> None:
    from cnnbench.errors import BadValueError
    from cnnbench.models import SimpleCNN

    with pytest.raises(BadValueError, match="--model.lookahead_decay must be in"):
        SimpleCNN(lookahead_decay=1.0)
    with pytest.raises(BadValueError, match=r"--model.lookahead_every must be > 0 \(got 0\)"):
        SimpleCNN(lookahead_decay=0.5, lookahead_every=0)
