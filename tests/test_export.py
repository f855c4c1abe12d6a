"""``cnnbench export``: the exported networks compute what the checkpoint's model computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbench.cli import CnnbenchCLI, main
from cnnbench.export import load_classifier
from cnnbench.models import SimpleCNN
from tests.helpers.runs import base_args


@pytest.mark.slow
def test_a_compiled_run_exports_the_networks_of_its_checkpoint(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    args = base_args(cifar_dir, tmp_path / "runs", "--model.compile=true", "--trainer.max_epochs=1")
    cli = CnnbenchCLI(args=["fit", *args])
    last = cli.run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["hyper_parameters"]["compile"] is True

    main(["export", str(last), f"--out={tmp_path / 'exported'}"])
    written = [Path(line) for line in capsys.readouterr().out.split()]
    (torchscript,) = [p for p in written if p.name.endswith(".torchscript.pt")]
    (program,) = [p for p in written if p.suffix == ".pt2"]

    # Export and the report's figures load the model uncompiled (compiling costs more than the few batches they run).
    assert not getattr(load_classifier(last)[0], "_backbone_compiled", False)
    # The reference: the plain network with the checkpoint's weights, built without cnnbench's loader.
    reference = SimpleCNN().eval()
    reference.load_state_dict(checkpoint["state_dict"])
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(torch.jit.load(torchscript)(x), expected, atol=1e-6)
        assert torch.allclose(torch.export.load(program).module()(x), expected, atol=1e-6)
