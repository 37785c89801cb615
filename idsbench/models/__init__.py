"""Built-in models.  Importing this package registers them all."""

from idsbench.models.base import BaseModel, SklearnAdapter, sklearn_model
from idsbench.models.registry import (
    create_model,
    get_model_spec,
    list_models,
    register_model,
)
from idsbench.models.torch_base import TorchClassifier, TorchModuleAdapter, torch_model

# Registration happens on import; order is irrelevant.
from idsbench.models import classic as _classic  # noqa: E402,F401
from idsbench.models import simple_nets as _simple_nets  # noqa: E402,F401

for _optional in ("lstm_resnet_cbam", "lunet", "densely_resnet"):
    # these live in their own modules; imported when present
    try:
        __import__(f"idsbench.models.{_optional}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"idsbench.models.{_optional}":
            raise

__all__ = [
    "BaseModel", "SklearnAdapter", "TorchClassifier", "TorchModuleAdapter", "create_model",
    "get_model_spec", "list_models", "register_model", "sklearn_model", "torch_model",
]
