"""``cnnbench export``: the exported networks compute what the checkpoint's model computes."""

from __future__ import annotations

import sys
from pathlib import Path

import onnxruntime
import pytest
import torch

from cnnbench.export import FORMATS, load_classifier
from cnnbench.models import SimpleCNN
from tests.helpers.runs import CnnbenchCLI, TrainedRun, base_args, main


@pytest.mark.slow
def test_a_compiled_run_exports_the_networks_of_its_checkpoint(cifar_dir: Path, tmp_path: Path, capsys) -> None:
    args = base_args(cifar_dir, tmp_path / "runs", "--model.compile=true", "--trainer.max_epochs=1")
    cli = CnnbenchCLI(args=["fit", *args])
    last = cli.run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["hyper_parameters"]["compile"] is True

    main(["export", str(last), f"--out={tmp_path / 'exported'}", "--format=torchscript", "--format=export"])
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


@pytest.mark.parametrize("model", ["simple_cnn", "resnet18"])
def test_exported_networks_give_the_checkpoint_logits(cifar_dir: Path, tmp_path: Path, model: str) -> None:
    import json

    import torch

    from cnnbench.export import export_checkpoint, load_classifier

    root = tmp_path / "runs"
    args = [a.replace("simple_cnn", model) for a in base_args(cifar_dir, root, "--trainer.max_epochs=1")]
    cli = CnnbenchCLI(args=["fit", *args])
    (best,) = (cli.run_dir / "checkpoints").glob("best-*.ckpt")
    program, onnx_file, torchscript, meta = export_checkpoint(best, tmp_path / "exported", FORMATS)
    reference, _ = load_classifier(best)
    session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # neither is the batch size traced (2): the batch axis is dynamic in every format
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            expected = reference(x)
            assert torch.allclose(torch.jit.load(torchscript)(x), expected, atol=1e-5)
            assert torch.allclose(torch.export.load(program).module()(x), expected, atol=1e-5)
        # ONNX Runtime's kernels differ from torch's: the logits agree to 1e-4 (float32 rounding, not a model error).
        (logits,) = session.run(["logits"], {"images": x.numpy()})
        assert logits.shape == (batch, 10)
        assert torch.allclose(torch.from_numpy(logits), expected, atol=1e-4)
    info = json.loads(meta.read_text())
    assert info["model"] == model and info["input_shape"] == [3, 32, 32] and info["mean"] == cli.datamodule.mean


def test_export_defaults_to_export_and_onnx(fitted: TrainedRun, tmp_path: Path, capsys) -> None:
    last = fitted.run_dir / "checkpoints" / "last.ckpt"
    main(["export", str(last), f"--out={tmp_path / 'exported'}"])
    written = [Path(line) for line in capsys.readouterr().out.splitlines()]
    # TorchScript (deprecated by torch) only on request.
    assert sorted(p.name for p in written) == ["simple_cnn-last.json", "simple_cnn-last.onnx", "simple_cnn-last.pt2"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("missing", ["onnx", "onnxscript"])
def test_the_default_without_the_export_extra_writes_torch_export_and_says_how_to_add_onnx(
    fitted: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: importlib finds no spec
    main(["export", str(fitted.run_dir / "checkpoints" / "last.ckpt"), f"--out={tmp_path / 'exported'}"])
    out, err = capsys.readouterr()
    assert sorted(Path(line).name for line in out.splitlines()) == ["simple_cnn-last.json", "simple_cnn-last.pt2"]
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["simple_cnn-last.json", "simple_cnn-last.pt2"]
    (line,) = err.strip().splitlines()
    assert "no ONNX file" in line and "pip install 'cnnbench[export]'" in line


def test_onnx_asked_for_without_the_export_extra_is_one_line(
    fitted: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed: importlib finds no spec
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(fitted.run_dir / "checkpoints" / "last.ckpt"), f"--out={tmp_path / 'exported'}",
              "--format=onnx"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "cnnbench: error: --format onnx needs the export extra: pip install 'cnnbench[export]'"
    ]
    assert not (tmp_path / "exported").exists()
