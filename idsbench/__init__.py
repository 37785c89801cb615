"""idsbench: fair, reproducible benchmarks of network intrusion-detection models.

The public API::

    import idsbench
    df = idsbench.run_benchmark("toniot", models=["xgboost", "lstm"], seeds=[0, 1, 2])
    idsbench.list_models()
    @idsbench.register_model("my-model")
    class MyModel: ...
"""

from idsbench.errors import ConfigError, DataError, IdsbenchError, ModelError

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DataError", "IdsbenchError", "ModelError", "__version__", "create_model",
    "list_models", "register_model", "run_benchmark", "DataConfig", "prepare",
]


def __getattr__(name):
    # lazy: `idsbench --help` must not import torch
    if name in ("create_model", "list_models", "register_model", "get_model_spec"):
        from idsbench.models import registry

        return getattr(registry, name)
    if name == "run_benchmark":
        from idsbench.runner import run_benchmark

        return run_benchmark
    if name in ("DataConfig", "prepare"):
        from idsbench import data

        return getattr(data, name)
    raise AttributeError(f"module 'idsbench' has no attribute {name!r}")
