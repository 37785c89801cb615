"""Class rebalancing (idsbench.rebalance) and class weights.

Most tests use a small encoded table shaped like the real ones: scaled numeric columns, two
one-hot blocks (one of them with all-zero rows, the encoding of a level unseen in training)
and a 0/1 flag column.
"""

from __future__ import annotations

import numpy as np
import pytest

from idsbench.data.prepare import DataConfig, PreparedData
from idsbench.errors import ConfigError, UnknownNameError
from idsbench.models.base import BaseModel
from idsbench.models.registry import register_model, unregister_model
from idsbench.rebalance import (_collapse, _expand, check_rebalance, list_methods,
                                rebalance_training, snap_synthetic)
from idsbench.report.leaderboard import render_leaderboard, variant_label
from idsbench.runner import JobSpec, build_jobs, run_job

CLASSES = ["Normal", "Exploits", "Backdoor", "Worms"]
GROUPS = {"proto": [3, 4, 5], "state": [6, 7]}
FLAG = 8
RESAMPLERS = [m for m in list_methods() if m != "none"]
OVERSAMPLERS = ["ros", "smote", "smotenc", "adasyn"]  # keep every training row, in order


def encoded(counts=(120, 40, 12, 7), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    n = len(y)
    numeric = rng.normal(size=(n, 3)) + 2.0 * y[:, None]
    proto = np.eye(3)[rng.integers(0, 3, n)]
    proto[rng.random(n) < 0.25] = 0.0  # a level unseen in training: all zeros
    state = np.eye(2)[rng.integers(0, 2, n)]  # never all zeros
    flag = rng.integers(0, 2, (n, 1))
    X = np.hstack([numeric, proto, state, flag]).astype(np.float32)
    perm = rng.permutation(n)
    return X[perm], y[perm]


def assert_valid_encoding(X_res, y_res, X, y):
    """Every one-hot block is one-hot (or all zeros where that class had all-zero rows)."""
    for name, idx in GROUPS.items():
        block = X_res[:, idx]
        assert np.isin(block, (0.0, 1.0)).all(), f"{name}: values other than 0/1"
        assert (block.sum(axis=1) <= 1).all(), f"{name}: more than one level set"
        zero_before = set(np.unique(y[X[:, idx].sum(axis=1) == 0]).tolist())
        zero_after = set(np.unique(y_res[block.sum(axis=1) == 0]).tolist())
        assert zero_after <= zero_before, f"{name}: all-zero rows made for classes {zero_after}"
    assert np.isin(X_res[:, FLAG], (0.0, 1.0)).all(), "flag column not 0/1"


# --------------------------------------------------------------------------------------------
# what each method promises


@pytest.mark.parametrize("method", RESAMPLERS)
def test_synthetic_rows_are_valid_encodings(method):
    X, y = encoded()
    X_res, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method=method)

    assert X_res.dtype == np.float32 and y_res.dtype == np.int64
    assert_valid_encoding(X_res, y_res, X, y)
    assert info["method"] == method
    assert sum(info["train_class_counts_after"].values()) == len(y_res)
    assert info["train_class_counts_before"] == dict(zip(CLASSES, np.bincount(y).tolist()))
    assert len(y) - info["removed_rows"] + info["synthetic_rows"] == len(y_res)


def test_smoothed_bootstrap_rows_are_snapped():
    X, y = encoded()
    X_res, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="ros",
                                            shrinkage=0.5)

    assert_valid_encoding(X_res, y_res, X, y)
    # the jitter does reach the numeric columns: these rows are not copies
    assert not np.isin(X_res[len(y):, 0], X[:, 0]).all()
    assert info["params"]["shrinkage"] == 0.5


@pytest.mark.parametrize("method", OVERSAMPLERS)
def test_oversamplers_keep_every_training_row_first(method):
    X, y = encoded()
    X_res, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method=method)

    # smotenc also proves that collapsing to level codes and expanding back loses nothing
    np.testing.assert_array_equal(X_res[:len(y)], X)
    np.testing.assert_array_equal(y_res[:len(y)], y)
    assert info["removed_rows"] == 0 and info["synthetic_rows"] == len(y_res) - len(y)


@pytest.mark.parametrize("method", ["ros", "smote", "smotenc"])
def test_oversampling_raises_every_class_to_the_majority(method):
    X, y = encoded()
    _, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method=method)

    assert np.bincount(y_res).tolist() == [120] * 4
    assert info["train_class_counts_after"] == dict.fromkeys(CLASSES, 120)


def test_undersampling_lowers_every_class_to_the_minority():
    X, y = encoded()
    X_res, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="rus")

    assert np.bincount(y_res).tolist() == [7] * 4
    assert info["synthetic_rows"] == 0 and info["removed_rows"] == len(y) - 28
    # only real rows: each resampled row is one of the training rows
    rows = {r.tobytes() for r in X}
    assert all(r.tobytes() in rows for r in X_res)


def test_adasyn_and_smotetomek_grow_the_small_classes():
    X, y = encoded()
    before = np.bincount(y)
    _, y_ada, _ = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="adasyn")
    _, y_st, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="smotetomek")

    ada, st = np.bincount(y_ada), np.bincount(y_st)
    assert ada[0] == before[0] and (ada[1:] > before[1:]).all()
    # SMOTE balances, then Tomek links remove rows of every class
    assert (st[1:] > before[1:]).all() and (st <= before.max()).all()
    assert info["removed_rows"] > 0  # the classes overlap, so Tomek links exist


def test_mapping_strategy_by_class_name():
    X, y = encoded()
    _, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="smote",
                                        sampling_strategy="Worms:30,backdoor:20")

    assert np.bincount(y_res).tolist() == [120, 40, 20, 30]
    assert info["params"]["sampling_strategy"] == {"Worms": 30, "backdoor": 20}


@pytest.mark.parametrize("method", RESAMPLERS)
def test_same_seed_same_rows_other_seed_other_rows(method):
    X, y = encoded()
    a = rebalance_training(X, y, GROUPS, CLASSES, seed=3, method=method)
    b = rebalance_training(X, y, GROUPS, CLASSES, seed=3, method=method)
    c = rebalance_training(X, y, GROUPS, CLASSES, seed=4, method=method)

    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


def test_none_returns_the_rows_untouched():
    X, y = encoded()
    X_res, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="none")

    np.testing.assert_array_equal(X_res, X)
    np.testing.assert_array_equal(y_res, y)
    assert info["synthetic_rows"] == 0
    assert info["train_class_counts_after"] == info["train_class_counts_before"]


# --------------------------------------------------------------------------------------------
# keeping encodings valid


def test_snap_takes_the_nearer_parents_level():
    groups = {"g": [0, 1, 2]}
    rows = np.array([
        [0.7, 0.3, 0.0, 0.49],  # between levels 0 and 1, nearer 0
        [0.2, 0.0, 0.0, 0.50],  # between all-zeros and level 0, nearer all-zeros
        [0.0, 0.6, 0.0, 0.51],  # between all-zeros and level 1, nearer level 1
        [0.0, 0.0, 1.0, 1.00],  # already valid
    ], dtype=np.float32)

    out = snap_synthetic(rows, groups, flags=[3])

    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]])
    assert rows[0, 0] == pytest.approx(0.7)  # the input is not modified


def test_collapse_and_expand_round_trip():
    X, _ = encoded()
    flags = np.array([FLAG])
    Xc, cat_positions, layout = _collapse(X, {k: np.array(v) for k, v in GROUPS.items()}, flags)

    assert Xc.shape == (len(X), 3 + 1 + len(GROUPS))  # numeric, flag, one code per block
    assert sorted(cat_positions) == [3, 4, 5]
    np.testing.assert_array_equal(_expand(Xc, layout), X)


# --------------------------------------------------------------------------------------------
# too few rows, bad names and values


@pytest.mark.parametrize("method", ["smote", "smotenc", "adasyn", "smotetomek"])
def test_a_one_row_class_cannot_be_interpolated(method):
    X, y = encoded(counts=(120, 40, 12, 1))

    with pytest.raises(ConfigError, match=r"class 'Worms' has 1 training row"):
        rebalance_training(X, y, GROUPS, CLASSES, seed=0, method=method)


def test_random_oversampling_copes_with_a_one_row_class():
    X, y = encoded(counts=(120, 40, 12, 1))
    _, y_res, _ = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="ros")

    assert np.bincount(y_res).tolist() == [120] * 4


@pytest.mark.parametrize("method,param", [("smote", "k_neighbors"), ("smotenc", "k_neighbors"),
                                          ("smotetomek", "k_neighbors")])
def test_too_few_neighbours_lowers_the_count_and_records_it(method, param):
    X, y = encoded(counts=(120, 40, 12, 3))
    _, y_res, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method=method,
                                        **{param: 5})

    assert info["params"][param] == 2
    assert info["adjustments"][param]["requested"] == 5
    assert info["adjustments"][param]["used"] == 2
    assert "'Worms' has 3 training rows" in info["adjustments"][param]["reason"]
    assert np.bincount(y_res)[3] > 3


def test_enough_neighbours_is_not_adjusted():
    X, y = encoded()
    _, _, info = rebalance_training(X, y, GROUPS, CLASSES, seed=0, method="smote", k_neighbors=3)

    assert info["params"]["k_neighbors"] == 3 and info["adjustments"] == {}
    assert info["requested"] == {"k_neighbors": 3}


def test_unknown_method_lists_methods_and_suggests_one():
    X, y = encoded()
    with pytest.raises(UnknownNameError) as err:
        rebalance_training(X, y, GROUPS, CLASSES, method="smoet")

    msg = str(err.value)
    assert "unknown rebalancing method 'smoet'" in msg
    assert all(m in msg for m in list_methods())
    assert "Did you mean 'smote'?" in msg


@pytest.mark.parametrize("alias,method", [("random-over", "ros"), ("random-under", "rus"),
                                          ("smote-nc", "smotenc"), ("SMOTE_Tomek", "smotetomek")])
def test_aliases(alias, method):
    X, y = encoded()
    _, _, info = rebalance_training(X, y, GROUPS, CLASSES, method=alias)

    assert info["method"] == method


def test_unknown_parameter_names_it_and_the_accepted_ones():
    with pytest.raises(ConfigError) as err:
        check_rebalance({"method": "smote", "k": 3})

    msg = str(err.value)
    assert "'k'" in msg and "'smote'" in msg
    assert "k_neighbors, sampling_strategy" in msg
    # adasyn's neighbour count has imbalanced-learn's other name
    with pytest.raises(ConfigError, match="Did you mean 'n_neighbors'"):
        check_rebalance({"method": "adasyn", "k_neighbors": 3})
    with pytest.raises(ConfigError, match="--seeds"):
        check_rebalance({"method": "ros", "random_state": 1})


@pytest.mark.parametrize("params,pattern", [
    ({"k_neighbors": 0}, "positive integer"),
    ({"k_neighbors": "five"}, "positive integer"),
    ({"sampling_strategy": "most"}, "expected one of auto"),
    ({"sampling_strategy": "Worms:lots"}, "CLASS:COUNT"),
])
def test_bad_parameter_values(params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        check_rebalance({"method": "smote", **params})


@pytest.mark.parametrize("strategy,pattern", [
    ("Wormz:50", "Did you mean 'Worms'"),
    ("Worms:2", "cannot be used with smote"),  # fewer rows than the class has
    (0.5, "cannot be used with smote"),  # a ratio is for binary tasks only
])
def test_strategies_the_data_cannot_meet(strategy, pattern):
    X, y = encoded()
    with pytest.raises(ConfigError, match=pattern):
        rebalance_training(X, y, GROUPS, CLASSES, method="smote", sampling_strategy=strategy)


def test_build_jobs_rejects_a_bad_rebalance_before_running():
    cfg = DataConfig("unsw", task="multiclass", split="random")
    with pytest.raises(UnknownNameError, match="rebalancing method"):
        build_jobs(cfg, ["stump"], [0], rebalance={"method": "smoet"})
    with pytest.raises(ConfigError, match="k_neighbours"):
        build_jobs(cfg, ["stump"], [0], rebalance={"method": "smote", "k_neighbours": 3})


# --------------------------------------------------------------------------------------------
# through the runner: training rows only


@pytest.fixture
def prepared() -> PreparedData:
    X, y = encoded(counts=(150, 50, 16, 9), seed=1)
    X_val, y_val = encoded(counts=(15, 5, 2, 1), seed=2)
    X_test, y_test = encoded(counts=(30, 10, 4, 2), seed=3)
    names = [f"f{i}" for i in range(X.shape[1])]
    return PreparedData(X, y, X_val, y_val, X_test, y_test, list(CLASSES), names,
                        np.zeros(len(y_test), dtype=bool), dict(GROUPS), {})


@pytest.fixture
def recorder():
    """A registered model that remembers what ``fit`` was given and predicts the prior."""
    seen: list[dict] = []

    class Recorder(BaseModel):
        def __init__(self, random_state: int = 0):
            self.random_state = random_state
            self._params = {}

        def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
            seen.append({"X": X, "y": y, "X_val": X_val, "y_val": y_val})
            self.prior_ = np.bincount(y) / len(y)
            return self

        def predict_proba(self, X):
            return np.tile(self.prior_, (len(X), 1))

    name = "test-rebalance-recorder"
    register_model(name, description="records fit arguments (tests)")(Recorder)
    yield name, seen
    unregister_model(name)


def _spec(model, rebalance, class_weight=None, model_params=None):
    cfg = DataConfig("unsw", task="multiclass", split="random")
    return JobSpec(cfg, model, seed=0, model_params=model_params or {},
                   rebalance=rebalance, class_weight=class_weight)


@pytest.mark.parametrize("method", ["ros", "rus", "smote", "smotenc"])
def test_runner_resamples_training_rows_only(prepared, recorder, method):
    name, seen = recorder
    X_train_before = prepared.X_train.copy()

    record, preds = run_job(_spec(name, {"method": method}), prepared)

    assert record["status"] == "ok", record.get("error")
    fit = seen[-1]
    # validation and test rows are the prepared ones, untouched
    assert fit["X_val"] is prepared.X_val and fit["y_val"] is prepared.y_val
    assert (record["n_val"], record["n_test"]) == (len(prepared.y_val), len(prepared.y_test))
    np.testing.assert_array_equal(preds["y_true"], prepared.y_test)
    np.testing.assert_array_equal(prepared.X_train, X_train_before)
    # the model was trained on the resampled rows the record describes
    rb = record["rebalance"]
    assert rb["train_class_counts_before"] == dict(zip(CLASSES, np.bincount(prepared.y_train).tolist()))
    assert rb["train_class_counts_after"] == dict(zip(CLASSES, np.bincount(fit["y"]).tolist()))
    assert len(set(rb["train_class_counts_after"].values())) == 1  # balanced
    assert record["n_train"] == len(prepared.y_train)


def test_runner_records_a_too_small_class_as_a_failed_job(prepared, recorder):
    name, _ = recorder
    prepared.y_train[prepared.y_train == 3] = 0
    prepared.y_train[np.flatnonzero(prepared.y_train == 0)[0]] = 3  # Worms: one row

    record, preds = run_job(_spec(name, {"method": "smote"}), prepared)

    assert record["status"] == "failed" and preds is None
    assert record["error"].startswith("ConfigError:") and "'Worms' has 1 training row" in record["error"]


def test_leaderboard_labels_rebalanced_rows(prepared, recorder):
    name, _ = recorder
    plain, _ = run_job(_spec(name, {"method": "none"}), prepared)
    smote, _ = run_job(_spec(name, {"method": "smote", "k_neighbors": 3}), prepared)
    ros, _ = run_job(_spec(name, {"method": "random-over"}), prepared)

    assert variant_label(plain) == name
    assert variant_label(smote) == f"{name} [rebalance=smote(k_neighbors=3)]"
    assert variant_label(ros) == f"{name} [rebalance=ros]"
    board = render_leaderboard([plain, smote, ros])
    assert f"| {name} [rebalance=smote(k_neighbors=3)] " in board
    assert f"| {name} [rebalance=ros] " in board


def test_real_unsw_training_rows(real_data_dir):
    from idsbench.data.prepare import prepare

    cfg = DataConfig("unsw", task="multiclass", split="random", max_train_rows=2000,
                     data_dir=str(real_data_dir)).resolved()
    data = prepare(cfg)
    groups = data.categorical_groups
    assert groups and all(len(v) > 1 for v in groups.values())

    for method in ("smote", "smotenc"):
        X_res, y_res, info = rebalance_training(data.X_train, data.y_train, groups, data.classes,
                                                seed=0, method=method)
        counts = set(info["train_class_counts_after"].values())
        assert counts == {max(info["train_class_counts_before"].values())}
        synthetic = X_res[len(data.y_train):]
        for name, idx in groups.items():
            block = synthetic[:, idx]
            assert np.isin(block, (0.0, 1.0)).all() and (block.sum(axis=1) <= 1).all(), name


# --------------------------------------------------------------------------------------------
# --class-weight balanced reaches the loss and the row weights


def _balanced(y, k):
    return len(y) / (k * np.bincount(y, minlength=k))


def test_class_weight_sets_torch_loss_weights(prepared, monkeypatch):
    import torch

    captured = []

    class RecordingLoss(torch.nn.CrossEntropyLoss):
        def __init__(self, weight=None, **kwargs):
            captured.append(None if weight is None else weight.detach().cpu().numpy())
            super().__init__(weight=weight, **kwargs)

    monkeypatch.setattr(torch.nn, "CrossEntropyLoss", RecordingLoss)
    training = {"epochs": 1, "batch_size": 64, "device": "cpu"}
    for class_weight in (None, "balanced"):
        spec = JobSpec(DataConfig("unsw", task="multiclass", split="random"), "cnn", seed=0,
                       training=training, class_weight=class_weight)
        record, _ = run_job(spec, prepared)
        assert record["status"] == "ok", record.get("error")

    unweighted, weighted = captured[0], captured[-1]
    assert unweighted is None
    np.testing.assert_allclose(weighted, _balanced(prepared.y_train, 4), rtol=1e-6)
    assert weighted[3] > weighted[0]  # the rare class counts more


def test_class_weight_sets_xgboost_sample_weights(prepared, monkeypatch):
    import xgboost

    captured = []
    original = xgboost.XGBClassifier.fit

    def recording_fit(self, X, y, **kwargs):
        captured.append(kwargs.get("sample_weight"))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(xgboost.XGBClassifier, "fit", recording_fit)
    for class_weight in (None, "balanced"):
        spec = _spec("xgboost", {"method": "none"}, class_weight,
                     {"n_estimators": 5, "n_jobs": 1})
        record, _ = run_job(spec, prepared)
        assert record["status"] == "ok", record.get("error")

    assert captured[0] is None
    y = prepared.y_train
    np.testing.assert_allclose(captured[1], _balanced(y, 4)[y], rtol=1e-6)
