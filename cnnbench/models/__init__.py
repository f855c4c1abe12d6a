"""The model zoo: backbones in a registry, each family wrapped by a LightningModule on :class:`ImageClassifier`.

Every module of this package other than the shared ones below is a family file: importing the package
imports each of them, which registers its backbone factories (``@register_model``) and defines its
LightningModule. A new architecture is therefore one new file here (and its expected parameter count in
the tests); its class and factories are exported under their own names (``cnnbench.models.ResNet``).
"""

import importlib
import pkgutil

from cnnbench.classifier import ImageClassifier, model_classes
from cnnbench.models.registry import create_model as create_model
from cnnbench.models.registry import factories
from cnnbench.models.registry import list_models as list_models
from cnnbench.models.registry import register_model as register_model

_SHARED = {"layers", "registry", "summary", "variants"}  # helpers, not families

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SHARED:
        importlib.import_module(f"{__name__}.{_module.name}")

globals().update({cls.__name__: cls for cls in model_classes() if cls is not ImageClassifier})
globals().update(factories())

__all__ = sorted(
    ["ImageClassifier", "create_model", "list_models", "register_model"]
    + [cls.__name__ for cls in model_classes() if cls is not ImageClassifier]
    + list(factories())
)
