"""The seed paper's model: a ResNet of CNN+LSTM residual modules and ResBlock-CBAM modules.

Cui, Chai & Yang, "Intrusion Detection on IoT Based on Deep Residual Network with Attention
Mechanisms" (``shared/reference/lstm-resnet-cbam-paper.md``), Sections III-V.  The class
docstring of :class:`LSTMResNetCBAM` separates what the paper states from what we chose.

Two ablations are registered beside the full model: ``lstm-resnet-cbam-noattn`` (no CBAM
modules) and ``lstm-resnet-cbam-nolstm`` (no LSTM units).
"""

from __future__ import annotations

import math
from typing import Any

from idsbench.errors import ConfigError
from idsbench.models.registry import register_model
from idsbench.models.torch_base import TorchClassifier

COMBINE_MODES = ("concat", "sum")
HEAD_POOLS = ("max", "avg")
CBAM_BLOCKS = ("bottleneck", "basic")


def _nn():
    from torch import nn

    return nn


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"lstm-resnet-cbam: {name} must be a positive integer, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"lstm-resnet-cbam: {name} must be one of {', '.join(choices)}; "
                          f"got {value!r}")


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1):
    nn = _nn()
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ChannelAttention(_nn().Module):
    """CBAM channel attention: ``sigmoid(MLP(global avg pool) + MLP(global max pool))``.

    Parameters
    ----------
    channels : int
        Channels of the feature map.
    reduction : int
        Reduction ratio of the shared MLP's hidden layer (16 in Woo et al. 2018).
    min_hidden : int
        Lower bound on the hidden size, so narrow maps keep a usable bottleneck (never more
        than ``channels``).
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 4):
        super().__init__()
        nn = _nn()
        # never wider than the input: with fewer than min_hidden channels the MLP keeps C units
        hidden = min(channels, max(channels // reduction, min_hidden, 1))

        # 1x1 convolutions act as the shared MLP on (B, C, 1, 1) descriptors without reshaping
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x):
        # global pooling over the whole map: a pooling window of 1 would not be global
        avg = x.mean(dim=(2, 3), keepdim=True)
        peak = x.amax(dim=(2, 3), keepdim=True)
        return (self.mlp(avg) + self.mlp(peak)).sigmoid()


class SpatialAttention(_nn().Module):
    """CBAM spatial attention: ``sigmoid(conv([mean over channels; max over channels]))``."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = _nn().Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        import torch

        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return self.conv(maps).sigmoid()


class CBAM(_nn().Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    The last attention maps computed in ``forward`` are kept, detached, in
    ``last_channel_attention`` (B, C, 1, 1) and ``last_spatial_attention`` (B, 1, H, W) for
    inspection; :meth:`attention_maps` computes them for a given input without side effects.
    Either half can be switched off, in which case its map is ``None``.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 4,
                 spatial_kernel: int = 7, channel: bool = True, spatial: bool = True):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction, min_hidden) if channel else None
        self.spatial = SpatialAttention(spatial_kernel) if spatial else None
        self.last_channel_attention = None
        self.last_spatial_attention = None

    def _attend(self, x):
        m_c = m_s = None
        if self.channel is not None:
            m_c = self.channel(x)
            x = x * m_c

        # spatial attention reads the channel-refined map (Eq. 10 of the paper, CBAM order)
        if self.spatial is not None:
            m_s = self.spatial(x)
            x = x * m_s
        return x, m_c, m_s

    def attention_maps(self, x):
        """The (channel, spatial) attention maps for ``x``; ``None`` for a disabled half."""
        _, m_c, m_s = self._attend(x)
        return m_c, m_s

    def forward(self, x):
        out, m_c, m_s = self._attend(x)
        self.last_channel_attention = None if m_c is None else m_c.detach()
        self.last_spatial_attention = None if m_s is None else m_s.detach()
        return out


class ConvLSTMResidual(_nn().Module):
    """The paper's residual module: a CNN unit and an LSTM unit on the residual branch.

    Branch: 1x1 conv to ``C / bottleneck`` channels, 3x3 conv, 1x1 conv back to ``C`` (each
    with BN + ReLU), max pooling, then an LSTM reading the ``H * W`` positions as a sequence of
    ``C``-dim vectors, dropout and ReLU.  Shortcut: the same max pooling applied to the input,
    so the two sides have equal shapes and the shortcut carries no weights.
    """

    def __init__(self, channels: int, in_size: int, bottleneck: int = 4, pool: int = 2,
                 min_size: int = 2, lstm: bool = True, lstm_hidden: int | None = None,
                 dropout: float = 0.2):
        super().__init__()
        nn = _nn()
        mid = max(channels // bottleneck, 1)
        self.cnn = nn.Sequential(*_conv_bn_relu(channels, mid, 1), *_conv_bn_relu(mid, mid, 3),
                                 *_conv_bn_relu(mid, channels, 1))

        # below min_size the spatial attention that follows would have (almost) nothing to
        # weigh; adaptive pooling hits the target size exactly whatever the window leaves over
        if pool > 1 and in_size > min_size:
            self.out_size = max(math.ceil(in_size / pool), min_size)
            self.pool = nn.AdaptiveMaxPool2d(self.out_size)
        else:
            self.pool = nn.Identity()
            self.out_size = in_size

        hidden = lstm_hidden or channels
        self.lstm = nn.LSTM(channels, hidden, batch_first=True) if lstm else None
        # the LSTM's output must have C features to be folded back into the map
        self.lstm_proj = nn.Linear(hidden, channels) if lstm and hidden != channels else None
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    def forward(self, x):
        branch = self.pool(self.cnn(x))
        if self.lstm is not None:
            b, c, h, w = branch.shape
            seq, _ = self.lstm(branch.flatten(2).transpose(1, 2))
            if self.lstm_proj is not None:
                seq = self.lstm_proj(seq)
            branch = seq.transpose(1, 2).reshape(b, c, h, w)
        branch = self.relu(self.dropout(branch))
        return self.pool(x) + branch


class ResBlockCBAM(_nn().Module):
    """ResNet block with CBAM on the residual branch, before the skip addition.

    ``block="bottleneck"``: 1x1 conv to ``C // bottleneck``, 3x3 conv, 1x1 conv back to C
    (the residual module's CNN shape); ``block="basic"``: two 3x3 convs at width C.  The last
    conv has BN but no ReLU, so the branch can add negative corrections to the shortcut.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 4,
                 spatial_kernel: int = 7, channel_attention: bool = True,
                 spatial_attention: bool = True, block: str = "bottleneck",
                 bottleneck: int = 4):
        super().__init__()
        nn = _nn()
        if block == "basic":
            convs = _conv_bn_relu(channels, channels, 3)
            last = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        else:
            mid = max(channels // bottleneck, 1)
            convs = _conv_bn_relu(channels, mid, 1) + _conv_bn_relu(mid, mid, 3)
            last = nn.Conv2d(mid, channels, 1, bias=False)
        self.branch = nn.Sequential(*convs, last, nn.BatchNorm2d(channels))
        self.cbam = CBAM(channels, reduction, min_hidden, spatial_kernel, channel_attention,
                         spatial_attention)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.cbam(self.branch(x)))


class LSTMResNetCBAMNet(_nn().Module):
    """The network behind :class:`LSTMResNetCBAM`; see that class for the parameters."""

    def __init__(self, n_features: int, n_classes: int, channels: int = 32, pairs: int = 3,
                 bottleneck: int = 4, pool: int = 2, min_map_size: int = 2, lstm: bool = True,
                 lstm_hidden: int | None = None, dropout: float = 0.2, attention: bool = True,
                 channel_attention: bool = True, spatial_attention: bool = True,
                 reduction: int = 16, min_hidden: int = 4, spatial_kernel: int = 7,
                 cbam_block: str = "bottleneck", stem_kernel: int = 3, stem_stride: int = 2,
                 combine: str = "concat", head_pool: str = "max", raw_input: bool = True):
        super().__init__()
        nn = _nn()
        self.n_features = n_features
        self.side = max(math.ceil(math.sqrt(n_features)), 1)
        self.pad = self.side * self.side - n_features
        self.channels = channels
        self.combine = combine
        self.head_pool = head_pool
        self.raw_input = raw_input

        # the stride applies only while it leaves a map of at least min_map_size: BatchNorm in
        # training needs more than one value per channel even for a one-row batch
        stride = stem_stride
        while stride > 1 and math.ceil(self.side / stride) < min(min_map_size, self.side):
            stride -= 1
        self.stem = nn.Sequential(*_conv_bn_relu(1, channels, stem_kernel, stride))
        size = (self.side + 2 * (stem_kernel // 2) - stem_kernel) // stride + 1

        # each pair halves the map (ceil) down to min_map_size; the LSTM sequences shrink too
        use_cbam = attention and (channel_attention or spatial_attention)
        self.residuals = nn.ModuleList()
        self.cbams = nn.ModuleList() if use_cbam else None
        for _ in range(pairs):
            res = ConvLSTMResidual(channels, size, bottleneck, pool, min_map_size, lstm,
                                   lstm_hidden, dropout)
            size = res.out_size
            self.residuals.append(res)
            if use_cbam:
                self.cbams.append(ResBlockCBAM(channels, reduction, min_hidden, spatial_kernel,
                                               channel_attention, spatial_attention, cbam_block,
                                               bottleneck))
        self.map_size = size

        n_branches = 1 if self.cbams is None or combine == "sum" else 2
        head_in = n_branches * channels + (n_features if raw_input else 0)
        self.head = nn.Linear(head_in, n_classes)

    def _global_pool(self, x):
        return x.amax(dim=(2, 3)) if self.head_pool == "max" else x.mean(dim=(2, 3))

    def forward(self, x):
        import torch
        from torch.nn import functional as F

        # the flow's F features, zero-padded, become a one-channel side x side map
        raw = x
        z = F.pad(x, (0, self.pad)).view(x.shape[0], 1, self.side, self.side)
        z = self.stem(z)

        res_out = cbam_out = None
        for i, residual in enumerate(self.residuals):
            z = res_out = residual(z)
            if self.cbams is not None:
                z = cbam_out = self.cbams[i](z)

        parts = [self._global_pool(res_out)]
        if cbam_out is not None:
            pooled = self._global_pool(cbam_out)
            if self.combine == "sum":
                parts[0] = parts[0] + pooled
            else:
                parts.append(pooled)
        if self.raw_input:
            parts.append(raw)
        return self.head(torch.cat(parts, dim=1))


@register_model("lstm-resnet-cbam",
                description="Seed paper: ResNet of three (CNN+LSTM residual, ResBlock-CBAM) "
                            "module pairs with skip connections")
class LSTMResNetCBAM(TorchClassifier):
    """The seed paper's LSTM-ResNet with CBAM attention (Cui, Chai & Yang).

    From the paper (Sections III-V, Fig. 1-5):

    * three module pairs, each a residual module followed by a ResBlock-CBAM module, joined
      by skip connections;
    * residual module: a CNN unit of 1x1 conv down to C/4 channels, 3x3 conv, 1x1 conv back to
      C, each followed by BatchNorm and ReLU; max pooling; then an LSTM unit, dropout and ReLU;
    * CBAM (Woo et al. 2018): channel attention ``sigmoid(MLP(AvgPool) + MLP(MaxPool))`` with
      a shared MLP, then spatial attention ``sigmoid(conv([AvgPool; MaxPool]))`` over the
      channel axis;
    * the outputs of the residual and CBAM modules and the raw input feed one fully connected
      layer; softmax and cross-entropy (applied by the training loop: the module returns
      logits).

    From the CBAM paper, not restated by the seed paper: MLP reduction ratio 16, spatial
    kernel 7, CBAM on the residual branch of a ResNet block before the skip addition (the
    CBAM paper uses both the basic and the bottleneck block; which one is ours, see below).

    Our choices, where the paper leaves a shape open (each is a parameter):

    * Input map: the F features are zero-padded to ``S * S`` with ``S = ceil(sqrt(F))`` and
      read as a one-channel S x S map (F=196 gives 14 x 14).  A flow record has no spatial
      layout; a square map is the smallest one the paper's 3x3 convs can work on.
    * Stem: a conv (``stem_kernel=3``, ``stem_stride=2``) + BN + ReLU lifts the map to C
      channels at half resolution (14 x 14 -> 7 x 7).  The stride is for cost: at full
      resolution the first module pair alone took more time than the rest of the network,
      and an epoch over UNSW-NB15 ran ~2 min on two CPU cores instead of ~35 s.  With 32
      learned filters over each 3x3 window the halving loses little; ``stem_stride=1``
      restores the full-resolution variant.  The stride is lowered where it would leave a
      map smaller than ``min_map_size`` (F <= 4).
    * Width ``channels=32``: the paper gives none.  The CBAM MLP hidden size is
      ``min(C, max(C // reduction, min_hidden))``; with C=32 and ratio 16 that would be 2
      units, so ``min_hidden=4``.
    * Pooling: each residual module max-pools its branch and its (parameter-free) shortcut
      alike to ``ceil(H / pool)`` (adaptive max pooling, so odd sizes need no padding rule),
      but never below ``min_map_size=2``, so F=196 gives maps 7 -> 4 -> 2 -> 2 and a 1x1 map
      is never pooled.  Eq. (8) describes pooling to 1x1xC, which would leave the LSTM a
      one-step sequence and the spatial attention nothing to weigh, so we read the module's
      pooling as local down-sampling (Eq. 7) and use global max pooling only in the head.
    * LSTM: reads the H*W positions (row-major) as a sequence of C-dim vectors and is folded
      back into the map; ``lstm_hidden`` defaults to C (a linear projection back to C is added
      when it differs).  ``dropout=0.2`` (not given by the paper).
    * Shortcuts: the residual module adds its (pooled) input to its branch.  The ResBlock-CBAM
      module is a ResNet block with CBAM before the addition; ``cbam_block="bottleneck"``
      (1x1 to C/4, 3x3, 1x1 back, as in the residual module and CBAM's ResNet-50 placement)
      is the default for cost, ``"basic"`` uses two 3x3 convs at width C.
    * Head: the last pair's residual and CBAM outputs are globally pooled (``head_pool``,
      max by default after Eq. 8) and, with ``combine="concat"``, concatenated with the raw
      input; ``combine="sum"`` adds the two pooled vectors first, following Section III's
      "the sum of the outputs from the final module pair".

    Parameters
    ----------
    random_state : int
        Seed for weights, dropout and batch order.
    channels : int, default 32
        Channel width C of every module.
    pairs : int, default 3
        Number of (residual, ResBlock-CBAM) module pairs; 3 in the paper.
    bottleneck : int, default 4
        The residual module's first 1x1 conv reduces to ``C // bottleneck`` (paper: C/4).
    pool : int, default 2
        Down-sampling factor of the max pooling in each residual module (1 disables it).
    min_map_size : int, default 2
        Maps are not pooled below this side length.
    lstm : bool, default True
        Keep the LSTM units; ``False`` is the no-LSTM ablation.
    lstm_hidden : int or None, default None
        LSTM hidden size; ``None`` means C.
    dropout : float, default 0.2
        Dropout after each LSTM unit.
    attention : bool, default True
        Keep the ResBlock-CBAM modules; ``False`` removes them (the no-attention ablation).
    channel_attention, spatial_attention : bool, default True
        Keep either half of CBAM; with both off no CBAM module is built.
    reduction : int, default 16
        CBAM channel-MLP reduction ratio.
    min_hidden : int, default 4
        Lower bound on the CBAM channel-MLP hidden size.
    spatial_kernel : int, default 7
        Kernel of the CBAM spatial-attention conv.
    cbam_block : {"bottleneck", "basic"}, default "bottleneck"
        Shape of the ResNet block that carries CBAM.
    stem_kernel : int, default 3
        Kernel of the stem conv lifting the one-channel map to C channels.
    stem_stride : int, default 2
        Stride of the stem conv (1 keeps the full-resolution map).
    combine : {"concat", "sum"}, default "concat"
        How the pooled residual and CBAM outputs are joined before the head.
    head_pool : {"max", "avg"}, default "max"
        Global pooling of the last maps before the head.
    raw_input : bool, default True
        Feed the raw feature vector to the head as well (the paper does).
    **kwargs
        Training settings of :class:`~idsbench.models.torch_base.TorchClassifier`.
    """

    def __init__(self, random_state: int = 0, channels: int = 32, pairs: int = 3,
                 bottleneck: int = 4, pool: int = 2, min_map_size: int = 2, lstm: bool = True,
                 lstm_hidden: int | None = None, dropout: float = 0.2, attention: bool = True,
                 channel_attention: bool = True, spatial_attention: bool = True,
                 reduction: int = 16, min_hidden: int = 4, spatial_kernel: int = 7,
                 cbam_block: str = "bottleneck", stem_kernel: int = 3, stem_stride: int = 2,
                 combine: str = "concat", head_pool: str = "max", raw_input: bool = True,
                 **kwargs: Any):
        super().__init__(random_state=random_state, channels=channels, pairs=pairs,
                         bottleneck=bottleneck, pool=pool, min_map_size=min_map_size, lstm=lstm,
                         lstm_hidden=lstm_hidden,
                         dropout=dropout, attention=attention,
                         channel_attention=channel_attention,
                         spatial_attention=spatial_attention, reduction=reduction,
                         min_hidden=min_hidden, spatial_kernel=spatial_kernel,
                         cbam_block=cbam_block, stem_kernel=stem_kernel,
                         stem_stride=stem_stride, combine=combine, head_pool=head_pool,
                         raw_input=raw_input, **kwargs)

    def build_module(self, n_features: int, n_classes: int):
        p = self.module_params
        for name in ("channels", "pairs", "bottleneck", "pool", "min_map_size", "reduction",
                     "min_hidden",
                     "spatial_kernel", "stem_kernel", "stem_stride"):
            _check_positive_int(name, p[name])
        if p["lstm_hidden"] is not None:
            _check_positive_int("lstm_hidden", p["lstm_hidden"])
        _check_choice("combine", p["combine"], COMBINE_MODES)
        _check_choice("cbam_block", p["cbam_block"], CBAM_BLOCKS)
        _check_choice("head_pool", p["head_pool"], HEAD_POOLS)
        if not 0.0 <= p["dropout"] < 1.0:
            raise ConfigError(f"lstm-resnet-cbam: dropout must be in [0, 1), got {p['dropout']!r}")
        return LSTMResNetCBAMNet(n_features, n_classes, **p)


@register_model("lstm-resnet-cbam-noattn", variant_of="lstm-resnet-cbam",
                description="Ablation of lstm-resnet-cbam without the ResBlock-CBAM modules "
                            "(attention=False); a variant, not a separate published model")
class LSTMResNetNoAttention(LSTMResNetCBAM):
    """:class:`LSTMResNetCBAM` with ``attention=False``: residual modules only."""

    def __init__(self, random_state: int = 0, attention: bool = False, **kwargs: Any):
        super().__init__(random_state=random_state, attention=attention, **kwargs)


@register_model("lstm-resnet-cbam-nolstm", variant_of="lstm-resnet-cbam",
                description="Ablation of lstm-resnet-cbam without the LSTM units (lstm=False); "
                            "a variant, not a separate published model")
class LSTMResNetCBAMNoLSTM(LSTMResNetCBAM):
    """:class:`LSTMResNetCBAM` with ``lstm=False``: CNN units and CBAM only."""

    def __init__(self, random_state: int = 0, lstm: bool = False, **kwargs: Any):
        super().__init__(random_state=random_state, lstm=lstm, **kwargs)
