"""Local reports: test-end figures, and ``cnnbench report`` over real (tiny) runs, one of them resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure
from PIL import Image

from tests.helpers.datasets import write_cifar10
from tests.helpers.isolation import isolate
from tests.helpers.runs import CnnbenchCLI, base_args, column, main, read_csv, read_metrics


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[CnnbenchCLI]]:
    """simple_cnn trained 1 epoch then resumed to 2, and lenet5 for 2 epochs; each tested with its best. Trained
    once for the module: its tests only read the runs."""
    tmp_path = tmp_path_factory.mktemp("two_runs")
    cifar_dir, root = tmp_path / "data", tmp_path / "runs"
    write_cifar10(cifar_dir)
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch)
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


def test_report_compares_runs_in_a_table_curves_and_figures(
    two_runs, tmp_path: Path, capsys: pytest.CaptureFixture, saved_figures: dict[str, Figure]
) -> None:
    data_dir, _, (simple, lenet, simple_test, lenet_test) = two_runs
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
    # The curves: each run's train and val loss and accuracy per epoch and its LR per step, as its metrics.csv has them.
    loss_ax, acc_ax, lr_ax = saved_figures["curves.png"].axes
    for run_index, cli in enumerate((simple, lenet)):
        rows, folder = read_metrics(cli.run_dir), f"{cli.run_dir.parent.name}/{cli.run_dir.name}"
        for ax, name in ((loss_ax, "train/loss"), (loss_ax, "val/loss"), (acc_ax, "train/acc"), (acc_ax, "val/acc")):
            split = name.split("/")[0]
            (line,) = [x for x in ax.get_lines() if folder in x.get_label() and x.get_label().endswith(split)]
            assert list(line.get_ydata()) == pytest.approx([v for _, v in column(rows, name)]), (folder, name)
            assert line.get_linestyle() == ("-" if name.startswith("train") else "--")
            assert line.get_color() == f"C{run_index}"  # one colour per run
        (lr_line,) = [x for x in lr_ax.get_lines() if folder in x.get_label()]
        assert list(lr_line.get_ydata()) == pytest.approx([v for _, v in column(rows, "train/lr")])
    # Two runs drawn: 2 lines each for loss and accuracy, one LR line each, and a legend entry per line.
    assert [len(ax.get_lines()) for ax in (loss_ax, acc_ax, lr_ax)] == [4, 4, 2]
    assert [len(ax.get_legend().get_texts()) for ax in (loss_ax, acc_ax, lr_ax)] == [4, 4, 2]


def test_report_of_a_folder_that_is_no_run_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is not a cnnbench run folder (missing config.yaml, hparams.yaml, metrics.csv)" in capsys.readouterr().err
