"""Every config in configs/ parses and builds its model with the data's shapes; every sweep file's trial parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from optuna.distributions import CategoricalDistribution

from cnnbench.models.summary import input_shape
from cnnbench.sweep_spec import SweepSpec, trial_args
from tests.helpers.model_params import expected_params
from tests.helpers.runs import CnnbenchCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name not in ("logger", "sweeps"))
# configs/<dataset>/<model>.yaml, except recipes named for their purpose: the model each of those trains.
NAMED_RECIPES = {"fast": "fastnet", "fast94": "airnet", "fast94_muon": "airnet", "fast94_lookahead": "airnet",
                 "fast95": "airnet"}  # fmt: skip
# The Muon speed recipes from the 2025 CIFAR-10 records, each smoke-tested for one epoch on the tiny data.
MUON_RECIPES = [CONFIGS / f"cifar10/{name}.yaml" for name in ("fast94_muon", "fast94", "fast95")]


def airnet_params(widths: list[int], in_channels: int = 3, num_classes: int = 10) -> int:
    """AirNet's parameter count from its widths: the 2x2 whitening conv (with bias), two 3x3 convs and two
    BatchNorms (scale and shift) per group, the bias-free head."""
    whiten = 8 * in_channels
    count, channels = whiten * in_channels * 4 + whiten, whiten
    for width in widths:
        count += channels * width * 9 + width * width * 9 + 4 * width
        channels = width
    return count + channels * num_classes


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
    if model.model_name == "airnet" and list(model.hparams.widths) != [64, 256, 256]:  # a wider AirNet
        assert params == airnet_params(list(model.hparams.widths), num_classes=data.num_classes)
    else:
        assert params == expected_params(model.model_name, expected_shape, data.num_classes, model)
    # Every init argument the file sets arrived (nothing silently dropped or renamed).
    written = yaml.safe_load(config.read_text())
    for key, value in written["model"]["init_args"].items():
        assert model.hparams[key] == value, key


def test_airnet_params_formula_gives_the_documented_count() -> None:
    assert airnet_params([64, 256, 256]) == expected_params("airnet", (3, 32), 10, None)


@pytest.mark.parametrize("config", MUON_RECIPES, ids=lambda p: p.stem)
def test_muon_recipe_trains_an_epoch_on_tiny_data(config: Path, cifar_dir: Path, tmp_path: Path) -> None:
    """One epoch of the recipe as written (Muon and its groups, jitter) on the tiny synthetic CIFAR-10."""
    args = [f"--config={config}", f"--data.data_dir={cifar_dir}", "--data.download=false",
            f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1", "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]  # fmt: skip
    fit = CnnbenchCLI(args=["fit", *args])
    assert fit.trainer.global_step == 1  # 100 images, one batch of up to 2000
    optimizer = fit.trainer.optimizers[0]
    muon = [g for g in optimizer.param_groups if g["muon"]]
    assert len(muon) == 1 and len(muon[0]["params"]) == 6  # the six 3x3 convolutions
    written = yaml.safe_load(config.read_text())["model"]["init_args"]
    assert optimizer.state[muon[0]["params"][0]]["step"] == 1 and muon[0]["initial_lr"] == written["muon_lr"]


# The Optuna sweep files (configs/sweeps/, W&B's aside): they name their config relative to the repository.
OPTUNA_SWEEPS = sorted(p for p in (CONFIGS / "sweeps").glob("*.yaml") if not p.stem.startswith("wandb-"))


def first_point(spec: SweepSpec) -> dict[str, object]:
    """A trial's values: the first grid point, or each range's low end and each choice's first entry."""
    return {key: dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low
            for key, dist in spec.distributions().items()}  # fmt: skip


def option_pairs(args: list[str]) -> dict[str, str]:
    """``--key value`` and ``--key=value`` arguments as {key: value}."""
    pairs, rest = {}, list(args)
    while rest:
        key = rest.pop(0).removeprefix("--")
        key, value = key.split("=", 1) if "=" in key else (key, rest.pop(0))
        pairs[key] = value
    return pairs


def cli_value(text: str) -> object:
    """An argument's value as the parser reads it (JSON first: YAML 1.1 reads ``1e-05`` as a string)."""
    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


@pytest.mark.parametrize("sweep", OPTUNA_SWEEPS, ids=lambda p: p.stem)
def test_a_sweep_files_trial_is_a_fit_that_gets_its_values(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CONFIGS.parent)
    spec = SweepSpec.read(sweep)
    args = trial_args(spec, tmp_path, 0, first_point(spec))
    assert args[0] == "fit"
    cli = CnnbenchCLI(args=[*args[1:], f"--data.data_dir={tmp_path}"], run=False)
    config = cli.config.as_dict()
    for key, value in option_pairs(args[1:]).items():
        section, _, name = key.partition(".")
        if section in ("model", "data"):  # a class's argument, written without its init_args
            assert config[section]["init_args"][name.removeprefix("init_args.")] == cli_value(value), key
        elif section == "trainer" or key == "seed_everything":
            assert (config[section][name] if name else config[key]) == cli_value(value), key
