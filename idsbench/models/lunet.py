"""LuNet: hierarchical CNN + LSTM levels of growing granularity (Wu & Guo, IEEE SSCI 2019).

One of the seed paper's Table II comparison models.  See :class:`LuNet` for what comes from the
paper and what we chose.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from idsbench.errors import ConfigError
from idsbench.models.registry import register_model
from idsbench.models.torch_base import TorchClassifier

DOWNSAMPLE_MODES = ("stride", "pool")
#: sequences are not shortened below this many positions
MIN_LENGTH = 2


def _nn():
    from torch import nn

    return nn


def per_level(name: str, value: Any, levels: int) -> tuple[int, ...]:
    """Expand an int or a sequence into one positive int per level, or raise ConfigError."""
    values = (value,) * levels if isinstance(value, int) else tuple(value)
    if len(values) != levels or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                    for v in values):
        raise ConfigError(f"lunet: {name} must be a positive integer or {levels} positive "
                          f"integers (one per level), got {value!r}")
    return values


class LuNetLevel(_nn().Module):
    """One level: a sequence-shortening conv, BN, ReLU, then an LSTM of the same width.

    ``downsample="stride"``: the conv itself has stride ``factor`` and kernel
    ``max(kernel_size, factor)``, so no input position is skipped and no full-length map is
    ever built.  ``downsample="pool"``: a stride-1 conv, BN and ReLU at full length, then max
    pooling by ``factor``.  Either way the output has ``ceil(L / factor)`` positions.  The LSTM
    reads them as a sequence of ``width``-dim vectors and returns the whole sequence
    (B, width, L'), so the next level convolves over the LSTM's output.
    """

    def __init__(self, c_in: int, width: int, kernel_size: int, in_len: int, factor: int,
                 downsample: str = "stride"):
        super().__init__()
        nn = _nn()
        # never below two positions (or the input's own length): BatchNorm in training needs
        # more than one value per channel even when the last batch holds a single row
        self.out_len = max(math.ceil(in_len / factor), min(MIN_LENGTH, in_len))
        if downsample == "stride" and factor > 1:
            kernel = max(kernel_size, factor)
            # zero-pad both ends so the strided windows cover the whole sequence exactly
            pad = max((self.out_len - 1) * factor + kernel - in_len, 0)
            self.conv = nn.Sequential(nn.ConstantPad1d((pad // 2, pad - pad // 2), 0.0),
                                      nn.Conv1d(c_in, width, kernel, stride=factor, bias=False))
            self.pool = nn.Identity()
        else:
            self.conv = nn.Conv1d(c_in, width, kernel_size, padding=kernel_size // 2,
                                  bias=False)
            shorter = self.out_len < in_len
            self.pool = nn.AdaptiveMaxPool1d(self.out_len) if shorter else nn.Identity()
        self.bn = nn.BatchNorm1d(width)
        self.relu = nn.ReLU(inplace=True)
        self.lstm = nn.LSTM(width, width, batch_first=True)

    def forward(self, x):
        z = self.pool(self.relu(self.bn(self.conv(x))))
        seq, _ = self.lstm(z.transpose(1, 2))
        return seq.transpose(1, 2)


class LuNetNet(_nn().Module):
    """The network behind :class:`LuNet`; see that class for the parameters."""

    def __init__(self, n_features: int, n_classes: int, widths: Sequence[int] = (64, 128, 256),
                 kernel_size: int = 3, factors: Sequence[int] = (16, 4, 2),
                 downsample: str = "stride", final_width: int | None = None,
                 dropout: float = 0.5):
        super().__init__()
        nn = _nn()
        self.levels = nn.ModuleList()
        c_in, length = 1, n_features
        for width, factor in zip(widths, factors):
            level = LuNetLevel(c_in, width, kernel_size, length, factor, downsample)
            self.levels.append(level)
            c_in, length = width, level.out_len
        self.out_len = length

        final = final_width or c_in
        self.final_conv = nn.Sequential(
            nn.Conv1d(c_in, final, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(final), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(final, n_classes))

    def forward(self, x):
        # the encoded flow is read as a one-channel 1-D signal of F values
        z = x.unsqueeze(1)
        for level in self.levels:
            z = level(z)
        return self.head(self.final_conv(z))


@register_model("lunet",
                description="LuNet (Wu & Guo 2019): hierarchical conv + LSTM levels of growing "
                            "width, global average pooling, dropout, dense head")
class LuNet(TorchClassifier):
    """LuNet, a hierarchical CNN + RNN network (Wu & Guo, IEEE SSCI 2019).

    From the paper: stacked levels, each a convolution followed by a recurrent (LSTM) layer of
    the same width, the width (granularity) growing with depth; then a convolution, global
    average pooling, dropout and a dense softmax head.

    From FIELD-NOTES, unverified against the paper: three levels of widths 64, 128 and 256;
    dropout 0.5.

    Our choices (each a parameter):

    * The encoded flow is read as a one-channel 1-D signal of F values; every convolution is
      followed by BatchNorm and ReLU; ``kernel_size=3``.
    * Cost: an LSTM's work grows with its width squared times its sequence length, and a
      256-unit LSTM stepping over ~200 positions would take tens of minutes per epoch on two
      CPU cores.  So each level shortens the sequence by ``factors`` (default 16, 4, 2)
      before its LSTM, never below 2 positions: for F=196 the LSTMs read 13, 4 and 2 steps
      (F=100: 7, 2, 2).  By
      default (``downsample="stride"``) the level's conv does it with stride ``factor`` and
      kernel ``max(kernel_size, factor)``, so every input position is seen and no
      full-length 64-channel map is built (the first level thus embeds non-overlapping
      16-feature windows); ``downsample="pool"`` uses a stride-1 conv and max pooling
      instead (about twice as slow).  ``factors=1`` keeps the full length at every level.
    * Each LSTM returns its whole output sequence, which the next level convolves; the final
      conv keeps the last level's width unless ``final_width`` is given.

    Parameters
    ----------
    random_state : int
        Seed for weights, dropout and batch order.
    widths : int or sequence of int, default (64, 128, 256)
        Conv filters and LSTM units of each level; its length is the number of levels.
    kernel_size : int, default 3
        Kernel of the stride-1 convolutions (and the least kernel of the strided ones).
    factors : int or sequence of int, default (16, 4, 2)
        How much each level shortens the sequence before its LSTM (an int applies to all).
    downsample : {"stride", "pool"}, default "stride"
        Shorten with a strided conv or with max pooling after a stride-1 conv.
    final_width : int or None, default None
        Filters of the final convolution; ``None`` means the last level's width.
    dropout : float, default 0.5
        Dropout before the dense head.
    **kwargs
        Training settings of :class:`~idsbench.models.torch_base.TorchClassifier`.
    """

    def __init__(self, random_state: int = 0, widths: int | Sequence[int] = (64, 128, 256),
                 kernel_size: int = 3, factors: int | Sequence[int] = (16, 4, 2),
                 downsample: str = "stride", final_width: int | None = None,
                 dropout: float = 0.5, **kwargs: Any):
        super().__init__(random_state=random_state,
                         widths=widths if isinstance(widths, int) else tuple(widths),
                         kernel_size=kernel_size,
                         factors=factors if isinstance(factors, int) else tuple(factors),
                         downsample=downsample, final_width=final_width, dropout=dropout,
                         **kwargs)

    def build_module(self, n_features: int, n_classes: int):
        p = dict(self.module_params)
        widths = p["widths"]
        levels = 1 if isinstance(widths, int) else len(widths)
        if levels < 1:
            raise ConfigError("lunet: widths must name at least one level, got ()")
        p["widths"] = per_level("widths", widths, levels)
        p["factors"] = per_level("factors", p["factors"], levels)
        per_level("kernel_size", p["kernel_size"], 1)
        if p["final_width"] is not None:
            per_level("final_width", p["final_width"], 1)
        if p["downsample"] not in DOWNSAMPLE_MODES:
            raise ConfigError(f"lunet: downsample must be one of {', '.join(DOWNSAMPLE_MODES)}; "
                              f"got {p['downsample']!r}")
        if not 0.0 <= p["dropout"] < 1.0:
            raise ConfigError(f"lunet: dropout must be in [0, 1), got {p['dropout']!r}")
        return LuNetNet(n_features, n_classes, **p)
