"""Local reports: test-end figures, and ``cnnbench report`` over real (tiny) runs, one of them resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.runs import CnnbenchCLI, base_args, column, main, read_csv, read_metrics


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
