"""The seed paper's model and its two comparison networks: shapes, wiring and a learnability check.

Models: ``lstm-resnet-cbam`` (with its ``-noattn`` / ``-nolstm`` ablations), ``lunet`` and
``densely-resnet``.  Shapes and wiring run on small seeded synthetic data on the CPU; the
learnability check also fits a small subsample of the real ToN_IoT file.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from idsbench.errors import ConfigError  # noqa: E402
from idsbench.models import create_model, list_models  # noqa: E402
from idsbench.models.densely_resnet import DenseResidualUnit  # noqa: E402
from idsbench.models.lstm_resnet_cbam import (  # noqa: E402
    CBAM,
    ChannelAttention,
    SpatialAttention,
)

PAPER_MODELS = [
    "lstm-resnet-cbam",
    "lstm-resnet-cbam-noattn",
    "lstm-resnet-cbam-nolstm",
    "lunet",
    "densely-resnet",
]

# ablation switches of lstm-resnet-cbam checked on top of the registered variants
CBAM_SETTINGS = [
    {},
    {"attention": False},
    {"lstm": False},
    {"attention": False, "lstm": False},
    {"channel_attention": False},
    {"spatial_attention": False},
    {"combine": "sum", "head_pool": "avg", "cbam_block": "basic", "stem_stride": 1},
]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # these batches are tiny and gain nothing from intra-op threads; on a busy machine two
    # threads can spend seconds waiting on each other
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(name: str, n_features: int, n_classes: int, seed: int = 0, **params):
    """The untrained torch module of ``name``, seeded."""
    model = create_model(name, random_state=seed, **params)
    torch.manual_seed(seed)
    return model.build_module(n_features, n_classes)


def blobs(n_rows: int, n_features: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    y = np.arange(n_rows) % n_classes  # every class present
    return X, y


def test_all_paper_models_are_registered():
    assert set(PAPER_MODELS) <= set(list_models())
    assert set(list_models("lstm-resnet-cbam*")) >= {
        "lstm-resnet-cbam", "lstm-resnet-cbam-noattn", "lstm-resnet-cbam-nolstm"}


@pytest.mark.parametrize("n_classes", [2, 4], ids=["binary", "multiclass"])
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_fit_predict_proba_shapes(name, n_classes):
    X, y = blobs(48, 23, n_classes)
    model = create_model(name, random_state=0, epochs=1, batch_size=16, early_stopping=False,
                         device="cpu").fit(X, y)

    proba = model.predict_proba(X[:7])

    assert proba.shape == (7, n_classes)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert model.predict(X[:7]).shape == (7,)
    assert model.n_params_ > 0


@pytest.mark.parametrize("n_features", [100, 7, 3])
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_training_survives_a_last_batch_of_one_row(name, n_features):
    # 33 rows in batches of 16 leave one row: BatchNorm must still see two values per channel
    X, y = blobs(33, n_features, 2)
    model = create_model(name, random_state=0, epochs=1, batch_size=16, early_stopping=False,
                         device="cpu").fit(X, y)
    assert model.predict_proba(X).shape == (33, 2)


@pytest.mark.parametrize("n_features, n_classes", [(196, 10), (100, 2), (7, 3), (1, 2)])
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_module_returns_logits_of_shape_n_by_k(name, n_features, n_classes):
    net = build(name, n_features, n_classes).eval()

    with torch.no_grad():
        logits = net(torch.randn(5, n_features))

    assert logits.shape == (5, n_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("params", CBAM_SETTINGS, ids=str)
def test_cbam_settings_give_logits(params):
    net = build("lstm-resnet-cbam", 50, 3, **params).eval()

    with torch.no_grad():
        assert net(torch.randn(4, 50)).shape == (4, 3)


def _cbams(net):
    return [m for m in net.modules() if isinstance(m, CBAM)]


def test_cbam_attention_lies_in_open_unit_interval_and_depends_on_input():
    net = build("lstm-resnet-cbam", 64, 3).eval()
    cbams = _cbams(net)
    assert len(cbams) == 3

    gen = torch.Generator().manual_seed(1)
    maps = []
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(6, 64, generator=gen))
            maps.append([(c.last_channel_attention, c.last_spatial_attention) for c in cbams])

    for first, second in zip(*maps):
        for a, b in zip(first, second):
            assert a is not None and a.shape == b.shape
            assert (a > 0).all() and (a < 1).all()
            # two different inputs must not give the same attention
            assert not torch.allclose(a, b)
    channel, spatial = maps[1][0]
    assert channel.shape == (6, 32, 1, 1)
    assert spatial.shape[:2] == (6, 1)


def test_cbam_attention_maps_method_matches_forward():
    cbam = CBAM(16).eval()
    x = torch.randn(3, 16, 4, 4)

    with torch.no_grad():
        out = cbam(x)
        channel, spatial = cbam.attention_maps(x)

    torch.testing.assert_close(channel, cbam.last_channel_attention)
    torch.testing.assert_close(spatial, cbam.last_spatial_attention)
    torch.testing.assert_close(out, x * channel * spatial)


def test_channel_attention_pools_globally_and_clamps_hidden_size():
    att = ChannelAttention(32, reduction=16, min_hidden=4)
    assert att.mlp[0].out_channels == 4  # 32 // 16 = 2 is raised to the minimum
    assert ChannelAttention(256, reduction=16).mlp[0].out_channels == 16

    # a spike anywhere in the map must change the weights: the max pool covers the whole map
    x = torch.zeros(1, 32, 5, 5)
    spiked = x.clone()
    spiked[0, :, 4, 4] = 5.0
    with torch.no_grad():
        assert not torch.allclose(att(x), att(spiked))


def _params_with_bad_grads(net, n_features, n_classes):
    net.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, n_features, generator=gen)
    y = torch.arange(16) % n_classes
    torch.nn.functional.cross_entropy(net(x), y).backward()
    # a parameter whose gradient is missing, non-finite or exactly zero sits on a dead path
    return [name for name, p in net.named_parameters()
            if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_every_parameter_gets_a_finite_nonzero_gradient(name):
    net = build(name, 50, 3)
    assert _params_with_bad_grads(net, 50, 3) == []


@pytest.mark.parametrize("params", CBAM_SETTINGS, ids=str)
def test_every_parameter_gets_a_finite_nonzero_gradient_under_ablation(params):
    net = build("lstm-resnet-cbam", 50, 3, **params)
    assert _params_with_bad_grads(net, 50, 3) == []


def _count(net, kind):
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize("name, params, n_cbam, n_lstm", [
    ("lstm-resnet-cbam", {}, 3, 3),
    ("lstm-resnet-cbam-noattn", {}, 0, 3),
    ("lstm-resnet-cbam-nolstm", {}, 3, 0),
    ("lstm-resnet-cbam", {"attention": False, "lstm": False}, 0, 0),
    ("lstm-resnet-cbam", {"channel_attention": False, "spatial_attention": False}, 0, 3),
    ("lstm-resnet-cbam", {"pairs": 2}, 2, 2),
])
def test_ablation_switches_change_the_structure(name, params, n_cbam, n_lstm):
    net = build(name, 50, 3, **params)

    assert _count(net, CBAM) == n_cbam
    assert _count(net, torch.nn.LSTM) == n_lstm
    if n_cbam == 0:
        assert _count(net, ChannelAttention) == _count(net, SpatialAttention) == 0


def test_half_cbam_switches_remove_one_half():
    no_channel = build("lstm-resnet-cbam", 50, 3, channel_attention=False)
    no_spatial = build("lstm-resnet-cbam", 50, 3, spatial_attention=False)

    assert _count(no_channel, ChannelAttention) == 0
    assert _count(no_channel, SpatialAttention) == 3
    assert _count(no_spatial, ChannelAttention) == 3
    assert _count(no_spatial, SpatialAttention) == 0


def test_variants_only_change_their_own_default():
    full = create_model("lstm-resnet-cbam").get_params()
    noattn = create_model("lstm-resnet-cbam-noattn").get_params()
    nolstm = create_model("lstm-resnet-cbam-nolstm").get_params()

    assert {k for k in full if full[k] != noattn[k]} == {"attention"}
    assert {k for k in full if full[k] != nolstm[k]} == {"lstm"}
    # a variant's switch can still be overridden
    assert create_model("lstm-resnet-cbam-noattn", attention=True).get_params() == full


def test_residual_shortcut_and_pooling_keep_maps_at_least_two_wide():
    net = build("lstm-resnet-cbam", 196, 10)
    assert net.side == 14
    assert [r.out_size for r in net.residuals] == [4, 2, 2]


@pytest.mark.parametrize("downsample", ["stride", "pool"])
def test_lunet_levels_have_matching_conv_and_lstm_widths(downsample):
    widths = (8, 16, 24)
    net = build("lunet", 60, 3, widths=widths, factors=(4, 2, 2), downsample=downsample)

    assert len(net.levels) == len(widths)
    for level, width in zip(net.levels, widths):
        convs = [m for m in level.modules() if isinstance(m, torch.nn.Conv1d)]
        assert [c.out_channels for c in convs] == [width]
        assert level.lstm.input_size == level.lstm.hidden_size == width
    assert [lv.out_len for lv in net.levels] == [15, 8, 4]
    assert net.final_conv[0].in_channels == widths[-1]


def test_lunet_default_widths_and_sequence_lengths():
    net = build("lunet", 196, 10)
    assert [lv.lstm.hidden_size for lv in net.levels] == [64, 128, 256]
    assert [lv.out_len for lv in net.levels] == [13, 4, 2]
    assert [lv.out_len for lv in build("lunet", 100, 2).levels] == [7, 2, 2]


def test_densely_resnet_subnets_see_every_earlier_output():
    channels, growth, subnets = 12, 5, 3
    net = build("densely-resnet", 40, 3, channels=channels, growth=growth, subnets=subnets,
                units=2).eval()
    unit = net.units[0]
    assert isinstance(unit, DenseResidualUnit)
    assert [s.conv.in_channels for s in unit.subnets] == [channels + j * growth
                                                          for j in range(subnets)]

    # record each subnet's input and output, and the unit's input
    seen = {}
    unit.register_forward_hook(lambda m, inp, out: seen.__setitem__("unit_in", inp[0]))
    for j, sub in enumerate(unit.subnets):
        sub.register_forward_hook(
            lambda m, inp, out, j=j: seen.update({f"in{j}": inp[0], f"out{j}": out}))
    with torch.no_grad():
        net(torch.randn(4, 40))

    for j in range(subnets):
        expected = torch.cat([seen["unit_in"]] + [seen[f"out{i}"] for i in range(j)], dim=1)
        torch.testing.assert_close(seen[f"in{j}"], expected)


def test_densely_resnet_shortcut_passes_the_input_through():
    net = build("densely-resnet", 40, 3, channels=12, growth=5).eval()
    unit = net.units[1]
    x = torch.randn(4, 12, 3)

    with torch.no_grad():
        normal = unit(x)
        handle = unit.transition.register_forward_hook(lambda m, inp, out: torch.zeros_like(out))
        silenced = unit(x)
        handle.remove()

    torch.testing.assert_close(silenced, x)
    assert not torch.allclose(normal, x)


@pytest.mark.parametrize("name, params, message", [
    ("lstm-resnet-cbam", {"combine": "product"}, "combine must be one of concat, sum"),
    ("lstm-resnet-cbam", {"channels": 0}, "channels must be a positive integer"),
    ("lunet", {"widths": (64, 128), "factors": (2, 2, 2)}, "factors must be .* 2 positive"),
    ("lunet", {"downsample": "average"}, "downsample must be one of stride, pool"),
    ("densely-resnet", {"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
])
def test_bad_architecture_parameters_raise_config_error(name, params, message):
    with pytest.raises(ConfigError, match=message):
        create_model(name, **params).build_module(20, 2)


def test_lstm_resnet_cbam_fits_a_small_nonlinear_task():
    # class = how many of the first two features are positive: not linearly separable, so the
    # raw-input path to the head cannot solve it alone
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 30)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)

    model = create_model("lstm-resnet-cbam", random_state=0, epochs=20, batch_size=64, lr=3e-3,
                         early_stopping=False, device="cpu").fit(X, y)

    assert (model.predict(X) == y).mean() >= 0.95


@pytest.fixture(scope="module")
def toniot_small(real_data_dir):
    from idsbench.data.prepare import DataConfig, prepare

    cfg = DataConfig("toniot", task="binary", max_train_rows=1000, data_dir=str(real_data_dir))
    return prepare(cfg.resolved())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm-resnet-cbam", "lunet", "densely-resnet"])
def test_paper_models_fit_a_small_real_subsample(name, toniot_small):
    # the pieces are wired if the network can (nearly) memorise 900 real training flows; the
    # majority class alone is 76% of them, and no feature vector carries both labels
    X, y = toniot_small.X_train, toniot_small.y_train
    majority = np.bincount(y).max() / len(y)
    assert majority < 0.8

    model = create_model(name, random_state=0, epochs=40, batch_size=128, lr=1e-3,
                         early_stopping=False, device="cpu").fit(X, y)

    assert (model.predict(X) == y).mean() >= 0.97
