"""Densely-ResNet: residual units of densely connected Conv-GRU subnets (Wu et al., TrustCom 2020).

One of the seed paper's Table II comparison models.  See :class:`DenselyResNet` for what
comes from the paper and what we chose.
"""

from __future__ import annotations

import math
from typing import Any

from idsbench.errors import ConfigError
from idsbench.models.registry import register_model
from idsbench.models.torch_base import TorchClassifier

#: sequences are not shortened below this many positions
MIN_LENGTH = 2


def _nn():
    from torch import nn

    return nn


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"densely-resnet: {name} must be a positive integer, got {value!r}")


class ConvGRU(_nn().Module):
    """One subnet: conv -> BN -> ReLU -> GRU of the same width, returning the whole sequence."""

    def __init__(self, c_in: int, width: int, kernel_size: int):
        super().__init__()
        nn = _nn()
        self.conv = nn.Conv1d(c_in, width, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm1d(width)
        self.relu = nn.ReLU(inplace=True)
        self.gru = nn.GRU(width, width, batch_first=True)

    def forward(self, x):
        z = self.relu(self.bn(self.conv(x)))
        seq, _ = self.gru(z.transpose(1, 2))
        return seq.transpose(1, 2)


class DenseResidualUnit(_nn().Module):
    """A residual unit: ``x + transition(concat(x, s_1, ..., s_n))``.

    Subnet ``j`` (0-based) reads the concatenation of the unit's input and the outputs of
    subnets ``0..j-1``, so its conv has ``channels + j * growth`` input channels.  A 1x1 conv +
    BN (the transition) maps the full concatenation back to ``channels`` so the identity
    shortcut can be added.
    """

    def __init__(self, channels: int, subnets: int, growth: int, kernel_size: int):
        super().__init__()
        nn = _nn()
        self.subnets = nn.ModuleList(
            ConvGRU(channels + j * growth, growth, kernel_size) for j in range(subnets)
        )
        self.transition = nn.Sequential(
            nn.Conv1d(channels + subnets * growth, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
        )

    def branch(self, x):
        """The residual branch alone (without the shortcut)."""
        import torch

        features = [x]
        for subnet in self.subnets:
            features.append(subnet(torch.cat(features, dim=1)))
        return self.transition(torch.cat(features, dim=1))

    def forward(self, x):
        return x + self.branch(x)


class DenselyResNetNet(_nn().Module):
    """The network behind :class:`DenselyResNet`; see that class for the parameters."""

    def __init__(self, n_features: int, n_classes: int, units: int = 3, subnets: int = 3,
                 channels: int = 64, growth: int = 32, kernel_size: int = 3,
                 stem_factor: int = 16, unit_factor: int = 2, dropout: float = 0.2):
        super().__init__()
        nn = _nn()

        # a strided stem conv shortens the F-long signal so the GRUs step over fewer positions;
        # its kernel is at least its stride so no feature is skipped
        length = max(math.ceil(n_features / stem_factor), min(MIN_LENGTH, n_features))
        kernel = max(kernel_size, stem_factor)
        pad = max((length - 1) * stem_factor + kernel - n_features, 0)
        self.stem = nn.Sequential(
            nn.ConstantPad1d((pad // 2, pad - pad // 2), 0.0),
            nn.Conv1d(1, channels, kernel, stride=stem_factor, bias=False),
            nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
        )

        # units, with max pooling between them; never below two positions, as BatchNorm in
        # training needs more than one value per channel even for a one-row batch
        self.units = nn.ModuleList()
        self.pools = nn.ModuleList()
        self.lengths = [length]
        for i in range(units):
            self.units.append(DenseResidualUnit(channels, subnets, growth, kernel_size))
            if i < units - 1:
                shorter = max(math.ceil(length / unit_factor), min(MIN_LENGTH, length))
                pool = nn.AdaptiveMaxPool1d(shorter) if shorter < length else nn.Identity()
                self.pools.append(pool)
                length = shorter
                self.lengths.append(length)

        self.head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, n_classes))

    def forward(self, x):
        z = self.stem(x.unsqueeze(1))
        for i, unit in enumerate(self.units):
            z = unit(z)
            if i < len(self.pools):
                z = self.pools[i](z)
        return self.head(z)


@register_model("densely-resnet",
                description="Densely-ResNet (Wu, Moustafa, Yang & Guo 2020): residual units of "
                            "densely connected Conv-GRU subnets")
class DenselyResNet(TorchClassifier):
    """Densely connected residual network (Wu, Moustafa, Yang & Guo, IEEE TrustCom 2020).

    From the paper: several residual units, each a series of Conv-GRU subnets joined by dense
    ("wide") connections, with a shortcut around each unit; then pooling and a dense head.

    The numbers of units and subnets, the widths, kernels and dropout are not known to us:
    every default below is our choice, sized to train an epoch over UNSW-NB15 (~170k rows)
    in about a minute on two CPU cores.

    * Input: the encoded flow is read as a one-channel 1-D signal of F values.  A stem conv
      with stride ``stem_factor=16`` (kernel ``max(kernel_size, 16)``, so every feature is
      seen once) + BN + ReLU maps it to ``channels=64`` channels over ``ceil(F / 16)``
      positions (13 for F=196, 7 for F=100).  GRUs are sequential: on two CPU cores each GRU
      step over a batch of 512 costs about a millisecond forward and backward, so nine GRUs
      stepping over all F positions would take over half an hour per epoch.
    * Units: ``units=3`` residual units of ``subnets=3`` Conv-GRU subnets.  A subnet is a conv
      (``kernel_size=3``, ``growth=32`` filters) + BN + ReLU followed by a GRU of ``growth``
      units returning its whole sequence.  Dense connections as in DenseNet: subnet j reads the
      concatenation of the unit's input and all earlier subnets' outputs.  A 1x1 conv + BN
      maps the unit's full concatenation back to ``channels`` and the unit's input is added
      (identity shortcut, no activation after the addition).
    * Max pooling by ``unit_factor=2`` between units (13 -> 7 -> 4 positions for F=196),
      never below 2 positions (the stem keeps at least 2 as well).
    * Head: global average pooling, dropout ``0.2``, one linear layer to the logits.

    Parameters
    ----------
    random_state : int
        Seed for weights, dropout and batch order.
    units : int, default 3
        Residual units.
    subnets : int, default 3
        Conv-GRU subnets per unit.
    channels : int, default 64
        Channels entering and leaving every unit (the shortcut's width).
    growth : int, default 32
        Conv filters and GRU units of each subnet (what each subnet adds to the concatenation).
    kernel_size : int, default 3
        Kernel of the subnets' convolutions.
    stem_factor : int, default 16
        Stride of the stem conv (how much the F-long signal is shortened).
    unit_factor : int, default 2
        Max-pooling factor between units (1 disables pooling).
    dropout : float, default 0.2
        Dropout before the dense head.
    **kwargs
        Training settings of :class:`~idsbench.models.torch_base.TorchClassifier`.
    """

    def __init__(self, random_state: int = 0, units: int = 3, subnets: int = 3,
                 channels: int = 64, growth: int = 32, kernel_size: int = 3,
                 stem_factor: int = 16, unit_factor: int = 2, dropout: float = 0.2,
                 **kwargs: Any):
        super().__init__(random_state=random_state, units=units, subnets=subnets,
                         channels=channels, growth=growth, kernel_size=kernel_size,
                         stem_factor=stem_factor, unit_factor=unit_factor, dropout=dropout,
                         **kwargs)

    def build_module(self, n_features: int, n_classes: int):
        p = self.module_params
        for name in ("units", "subnets", "channels", "growth", "kernel_size", "stem_factor",
                     "unit_factor"):
            _check_positive_int(name, p[name])
        if not 0.0 <= p["dropout"] < 1.0:
            raise ConfigError(f"densely-resnet: dropout must be in [0, 1), got {p['dropout']!r}")
        return DenselyResNetNet(n_features, n_classes, **p)
