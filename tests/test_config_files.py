"""A YAML syntax error in a file a command takes names the file and the line, in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.runs import main

BROKEN = "trainer:\n  max_epochs: 3\n  accelerator: [cpu\nmodel: simple_cnn\n"  # the list never closes


def one_line(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err and "<unicode string>" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("cnnbench: error:")]
    return line


@pytest.mark.parametrize("form", ["--config={}", "--config {}"])
def test_a_config_with_a_yaml_error_names_file_and_line(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    line = one_line(["fit", *form.format(config).split(" ")], capsys)
    assert f"config {config}, line 4, column 6: YAML syntax error" in line
    assert not (tmp_path / "checkpoints").exists()


def test_a_nested_config_file_with_a_yaml_error_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("dataset: cifar10\nbatch_size: 8\n  val_size: 3\n")  # a bad indent
    line = one_line(["fit", "--model=simple_cnn", f"--data={data}"], capsys)
    assert f"--data file {data}, line 3" in line


def test_a_sweep_spec_with_a_yaml_error_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text("study: s\nspace:\n  model.lr: {range: [0.01, 0.1}\n")
    line = one_line(["sweep", str(spec)], capsys)
    assert f"sweep file {spec}, line 3" in line and "YAML syntax error" in line
