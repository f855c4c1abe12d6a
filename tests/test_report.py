"""Local reports: test-end figures, and ``cnnbench report`` over real (tiny) runs, one of them resumed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from cnnbench.cli import CnnbenchCLI, main
from tests.helpers.runs import base_args, column, read_metrics


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture
def two_runs(cifar_dir: Path, tmp_path: Path) -> tuple[Path, Path, list[CnnbenchCLI]]:
    """simple_cnn trained 1 epoch then resumed to 2, and lenet5 for 2 epochs; each tested with its best."""
    root = tmp_path / "runs"
    simple = CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1")])
    CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=2", "--ckpt_path=last")])
    lenet_args = [a.replace("simple_cnn", "lenet5") for a in base_args(cifar_dir, root, "--trainer.max_epochs=2")]
    lenet = CnnbenchCLI(args=["fit", *lenet_args])
    lenet_test_args = [a.replace("simple_cnn", "lenet5") for a in base_args(cifar_dir, root, "--ckpt_path=best")]
    tests = [
        CnnbenchCLI(args=["test", *base_args(cifar_dir, root, "--ckpt_path=best")]),
        CnnbenchCLI(args=["test", *lenet_test_args]),
    ]
    return cifar_dir, tmp_path, [simple, lenet, *tests]


def test_test_writes_a_confusion_matrix_that_agrees_with_test_accuracy(two_runs) -> None:
    _, _, (_, _, test, _) = two_runs
    (test_acc,) = [v for _, v in column(read_metrics(test.log_dir), "test/acc")]
    header, *rows = read_csv(test.log_dir / "confusion_matrix.csv")
    counts = [[int(x) for x in row[1:]] for row in rows]
    assert len(counts) == 10 and sum(map(sum, counts)) == 30  # the whole test split
    assert sum(counts[i][i] for i in range(10)) / 30 == pytest.approx(test_acc)
    for name in ("confusion_matrix.png", "predictions.png"):
        with Image.open(test.log_dir / name) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_report_compares_runs_in_a_table_curves_and_figures(two_runs, capsys: pytest.CaptureFixture) -> None:
    data_dir, tmp_path, (simple, lenet, simple_test, lenet_test) = two_runs
    out = tmp_path / "report"
    main(["report", str(simple.run_dir), str(lenet.run_dir), f"--out={out}", f"--data-dir={data_dir}"])
    header, *rows = read_csv(out / "comparison.csv")
    assert header[:9] == [
        "model",
        "dataset",
        "params",
        "MFLOPs",
        "epochs",
        "best val acc",
        "test acc",
        "s/epoch",
        "img/s",
    ]
    for row, cli, test in ((rows[0], simple, simple_test), (rows[1], lenet, lenet_test)):
        val_acc = [v for _, v in column(read_metrics(cli.run_dir), "val/acc")]
        (test_acc,) = [v for _, v in column(read_metrics(test.log_dir), "test/acc")]
        assert row[4] == "2"  # the resumed run counts as one run of 2 epochs
        assert float(row[5]) == pytest.approx(100 * max(val_acc), abs=0.005)
        assert float(row[6]) == pytest.approx(100 * test_acc, abs=0.005)
        assert float(row[7]) > 0 and float(row[8].replace(",", "")) > 0
    assert [r[0] for r in rows] == ["simple_cnn", "lenet5"] and rows[0][2] == "36,458"
    assert "| simple_cnn | cifar10 | 36,458 |" in capsys.readouterr().out
    # The figures of the first run are those of its best checkpoint: the same matrix as its test.
    (matrix,) = out.glob("simple_cnn-*-confusion_matrix.csv")
    assert read_csv(matrix) == read_csv(simple_test.log_dir / "confusion_matrix.csv")
    for png in ("curves.png", f"{matrix.stem}.png", matrix.name.replace("confusion_matrix.csv", "predictions.png")):
        with Image.open(out / png) as image:
            assert image.format == "PNG"


def test_report_of_a_folder_that_is_no_run_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is not a cnnbench run folder (missing config.yaml, hparams.yaml, metrics.csv)" in capsys.readouterr().err


def test_predict_on_image_files_of_any_size_and_mode(fitted_run, tmp_path: Path) -> None:
    data_dir, root, cli = fitted_run
    test_images = cli.datamodule.splits["test"][0]
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(test_images[0].permute(1, 2, 0).numpy()).save(folder / "a_test0.png")  # a test image as is
    Image.fromarray(test_images[1].permute(1, 2, 0).numpy()).resize((96, 80)).convert("L").save(folder / "b_gray.jpg")
    Image.fromarray(test_images[2].permute(1, 2, 0).numpy()).convert("RGBA").save(folder / "c_rgba.png")
    (folder / "d_broken.png").write_bytes(b"not an image")
    args = base_args(data_dir, root, "--ckpt_path=best", f"--data.predict_files=[{folder}]")
    with pytest.warns(UserWarning, match=r"skipped an unreadable file: .*d_broken\.png: UnidentifiedImageError"):
        predicted = CnnbenchCLI(args=["predict", *args])
    rows = {Path(r[0]).name: r for r in read_csv(predicted.log_dir / "predictions.csv")[1:]}
    assert sorted(rows) == ["a_test0.png", "b_gray.jpg", "c_rgba.png"]
    header = read_csv(predicted.log_dir / "predictions.csv")[0]
    assert header[:9] == ["file", "pred", "pred_name", "top1", "top1_p", "top2", "top2_p", "top3", "top3_p"]
    for row in rows.values():
        assert row[3] == row[2] and float(row[4]) >= float(row[6]) >= float(row[8])
        assert sum(float(p) for p in row[9:]) == pytest.approx(1.0, abs=1e-4)
    # The PNG of test image 0 is predicted exactly as that image is in the test split.
    on_split = CnnbenchCLI(args=["predict", *base_args(data_dir, root, "--ckpt_path=best")])
    first = read_csv(on_split.log_dir / "predictions.csv")[1]
    assert rows["a_test0.png"][1:] == first[1:]


@pytest.fixture
def fitted_run(cifar_dir: Path, tmp_path: Path) -> tuple[Path, Path, CnnbenchCLI]:
    root = tmp_path / "runs"
    return cifar_dir, root, CnnbenchCLI(args=["fit", *base_args(cifar_dir, root, "--trainer.max_epochs=1")])


@pytest.mark.parametrize("model", ["simple_cnn", "resnet18"])
def test_exported_networks_give_the_checkpoint_logits(cifar_dir: Path, tmp_path: Path, model: str) -> None:
    import json

    import torch

    from cnnbench.export import export_checkpoint, load_classifier

    root = tmp_path / "runs"
    args = [a.replace("simple_cnn", model) for a in base_args(cifar_dir, root, "--trainer.max_epochs=1")]
    cli = CnnbenchCLI(args=["fit", *args])
    (best,) = (cli.run_dir / "checkpoints").glob("best-*.ckpt")
    torchscript, program, meta = export_checkpoint(best, tmp_path / "exported")
    reference, _ = load_classifier(best)
    x = torch.randn(5, 3, 32, 32)  # another batch size than the one traced
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(torch.jit.load(torchscript)(x), expected, atol=1e-5)
        assert torch.allclose(torch.export.load(program).module()(x), expected, atol=1e-5)
    info = json.loads(meta.read_text())
    assert info["model"] == model and info["input_shape"] == [3, 32, 32] and info["mean"] == cli.datamodule.mean
