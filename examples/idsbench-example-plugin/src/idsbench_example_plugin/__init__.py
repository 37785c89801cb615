"""An example idsbench plug-in: one model, a small multilayer perceptron.

The network is an ordinary ``torch.nn.Module``; :func:`idsbench.models.torch_model` turns the
function that builds it into a model factory, so idsbench's own training loop (optimiser,
batching, early stopping, seeding, device) trains it with the same profile as every other
network.  ``pyproject.toml`` publishes the factory under the entry point ``example-mlp``.
"""

from __future__ import annotations

from idsbench.models import torch_model


def mlp_module(n_features: int, n_classes: int, hidden: int = 64, dropout: float = 0.1):
    """Example plug-in: two-layer perceptron (Linear, ReLU, dropout, Linear)

    Parameters
    ----------
    n_features, n_classes : int
        Given by idsbench from the prepared data.
    hidden : int
        Width of the hidden layer (``--model-param example-mlp:hidden=128``).
    dropout : float
        Dropout after the hidden layer.
    """
    from torch import nn

    return nn.Sequential(
        nn.Linear(n_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
    )


#: The model factory the entry point names: ``mlp(random_state=0, hidden=64, epochs=..., ...)``.
mlp = torch_model(mlp_module)
