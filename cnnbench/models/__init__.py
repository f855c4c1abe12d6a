"""The model zoo: backbones in a registry, each family wrapped by a LightningModule on :class:`ImageClassifier`.

Importing the package imports every module of it, and so registers every model (``@register_model`` on each
backbone factory, in the file that defines its family's LightningModule). A new architecture is therefore one new
file here (and its expected parameter count in the tests); its class and factories are exported under their own
names (``cnnbench.models.ResNet``, ``cnnbench.models.resnet18``).
"""

import importlib
import pkgutil

from cnnbench.classifier import ImageClassifier as ImageClassifier
from cnnbench.models.registry import create_model as create_model
from cnnbench.models.registry import families, list_models, model_specs
from cnnbench.models.registry import model_spec as model_spec
from cnnbench.models.registry import register_model as register_model

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

globals().update({cls.__name__: cls for cls in families()})
globals().update({name: spec.factory for name, spec in model_specs().items()})

__all__ = sorted(
    ["ImageClassifier", "create_model", "list_models", "model_spec", "register_model"]
    + [cls.__name__ for cls in families()]
    + list_models()
)
