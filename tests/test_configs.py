"""Every config in configs/ parses and builds its model with the data's shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnnbench.models.summary import input_shape
from tests.helpers.model_params import expected_params
from tests.helpers.runs import CnnbenchCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name not in ("logger", "sweeps"))
# configs/<dataset>/<model>.yaml, except recipes named for their purpose: the model each of those trains.
NAMED_RECIPES = {"fast": "fastnet", "fast94": "airnet"}


@pytest.mark.parametrize("config", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_parses_and_builds_its_model(config: Path, tmp_path: Path) -> None:
    cli = CnnbenchCLI(
        args=[f"--config={config}", f"--data.data_dir={tmp_path}", f"--trainer.default_root_dir={tmp_path}"],
        run=False,
    )
    model, data = cli.model, cli.datamodule
    if config.parent.name != "seeds":  # configs/<dataset>/<model>.yaml
        assert (data.dataset, model.model_name) == (config.parent.name, NAMED_RECIPES.get(config.stem, config.stem))
    # The linked shapes reach the model, and it is the documented network.
    expected_shape = input_shape(model.model_name, data.dataset)
    assert (model.hparams.in_channels, model.hparams.image_size) == expected_shape
    params = sum(p.numel() for p in model.parameters())
    assert params == expected_params(model.model_name, expected_shape, data.num_classes, model)
    # Every init argument the file sets arrived (nothing silently dropped or renamed).
    written = yaml.safe_load(config.read_text())
    for key, value in written["model"]["init_args"].items():
        assert model.hparams[key] == value, key
