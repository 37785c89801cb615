"""The simple network baselines of the seed paper's Table II: LSTM and CNN.

The paper gives no sizes for them; the ones here are documented choices, small enough to
train on a laptop, and every one is a parameter.
"""

from __future__ import annotations

import math

from idsbench.models.registry import register_model
from idsbench.models.torch_base import TorchClassifier


def _nn():
    from torch import nn

    return nn


@register_model("lstm", description="LSTM over the flow's features cut into a short sequence")
class LSTMClassifier(TorchClassifier):
    """LSTM baseline.

    The encoded feature vector (F values) is zero-padded and cut into ``steps`` equal chunks,
    read as a sequence of ``steps`` time steps of ``ceil(F / steps)`` values each (our choice:
    one flow record has no time axis of its own, and reading single features one per step costs
    ~F sequential steps for no gain in accuracy).  ``layers`` stacked LSTM layers of ``hidden``
    units; the last step's output goes through dropout and a linear layer to the logits.
    """

    def __init__(self, random_state: int = 0, steps: int = 4, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.2, **kwargs):
        super().__init__(random_state=random_state, steps=steps, hidden=hidden, layers=layers,
                         dropout=dropout, **kwargs)

    def build_module(self, n_features: int, n_classes: int):
        return _LSTMNet(n_features, n_classes, **self.module_params)


class _LSTMNet(_nn().Module):
    def __init__(self, n_features, n_classes, steps=4, hidden=64, layers=1, dropout=0.2):
        super().__init__()
        nn = _nn()
        self.steps = steps
        self.chunk = math.ceil(n_features / steps)
        self.pad = self.chunk * steps - n_features
        self.lstm = nn.LSTM(self.chunk, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x):
        from torch.nn import functional as F

        x = F.pad(x, (0, self.pad)).view(x.shape[0], self.steps, self.chunk)
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@register_model("cnn", description="1-D CNN over the encoded feature vector")
class CNNClassifier(TorchClassifier):
    """CNN baseline.

    The feature vector is read as a one-channel 1-D signal.  Two blocks of
    Conv1d(kernel) -> BatchNorm -> ReLU -> MaxPool(2) with ``channels`` filters, then global max
    pooling, dropout and a linear layer.  Sizes are our choice (the seed paper gives none).
    """

    def __init__(self, random_state: int = 0, channels: tuple = (32, 64), kernel_size: int = 3,
                 dropout: float = 0.2, **kwargs):
        super().__init__(random_state=random_state, channels=tuple(channels),
                         kernel_size=kernel_size, dropout=dropout, **kwargs)

    def build_module(self, n_features: int, n_classes: int):
        nn = _nn()
        p = self.module_params
        layers, c_in = [], 1
        for c_out in p["channels"]:
            layers += [nn.Conv1d(c_in, c_out, p["kernel_size"], padding=p["kernel_size"] // 2),
                       nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True)]
            c_in = c_out
        return nn.Sequential(
            nn.Unflatten(1, (1, n_features)), *layers, nn.AdaptiveMaxPool1d(1), nn.Flatten(),
            nn.Dropout(p["dropout"]), nn.Linear(c_in, n_classes),
        )
