"""The model contract, checked over every registered model, and the checker itself.

``test_registered_model_keeps_the_contract`` is parametrized over ``list_models()`` at collection
time, so built-in models, the paper's models and any installed plug-in are covered the day they
are registered.  The other tests make sure each conformance check can fail, and test the
adapters and the registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from idsbench.conformance import check_model, synthetic_data
from idsbench.data.prepare import DataConfig
from idsbench.errors import ConfigError, UnknownNameError
from idsbench.models import BaseModel, create_model, get_model_spec, list_models, register_model
from idsbench.models import sklearn_model, torch_model
from idsbench.models.registry import accepted_params, unregister_model
from idsbench.runner import JobSpec, build_jobs, model_kwargs, run_job


@pytest.fixture
def one_torch_thread():
    """Tiny networks on a shared, busy CPU: one thread is several times faster than two."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def registered():
    """Register throw-away models; they are removed after the test."""
    names: list[str] = []

    def add(name: str, factory, **kwargs):
        register_model(name, **kwargs)(factory)
        names.append(name)
        return name

    yield add
    for name in names:
        unregister_model(name)


# --------------------------------------------------------------------------------------------
# every registered model


@pytest.mark.parametrize("name", list_models())
def test_registered_model_keeps_the_contract(name, one_torch_thread):
    report = check_model(name, rows=96, epochs=1, batch_size=64, device="cpu")
    assert report.passed, report.format()
    assert {r.name for r in report.results} >= {
        "construct", "binary", "repeatable", "row-order", "multiclass", "global-rng", "params",
        "evaluator-bin", "evaluator-multi"}


def test_the_paper_models_are_among_the_checked_ones():
    # the parametrization above covers them once they are registered
    present = {"lstm-resnet-cbam", "lunet", "densely-resnet"} & set(list_models())
    assert present, "none of the paper's models is registered"
    for name in present:
        assert get_model_spec(name).kind == "torch"


# --------------------------------------------------------------------------------------------
# the checker can fail: one broken model per check


class Centroids(BaseModel):
    """A correct, deterministic model the broken ones below derive from."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state
        self._params = {}

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        self.centroids_ = np.stack([X[y == k].mean(axis=0) for k in range(int(y.max()) + 1)])
        return self

    def predict_proba(self, X):
        z = -((np.asarray(X)[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2) / 10
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)


class Unnormalised(Centroids):
    def predict_proba(self, X):
        return 2 * super().predict_proba(X)


class NoReturnSelf(Centroids):
    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        super().fit(X, y)


class WritesIntoX(Centroids):
    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        X -= X.mean(axis=0)  # in place: the cache's read-only arrays refuse this
        return super().fit(X, y)


class Unseeded(Centroids):
    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        super().fit(X, y)
        noise = np.random.default_rng().normal(size=self.centroids_.shape)  # no seed
        self.centroids_ = self.centroids_ + noise
        return self


class GlobalRandom(Centroids):
    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        rows = np.random.permutation(len(y))  # draws from NumPy's global generator
        return super().fit(X[rows], y[rows])


class BatchStatistics(Centroids):
    def predict_proba(self, X):
        return super().predict_proba(np.asarray(X) - np.asarray(X).mean(axis=0))


class BinaryOnly(Centroids):
    def predict_proba(self, X):
        p = super().predict_proba(X)[:, :2]  # two columns whatever the number of classes
        return p / p.sum(axis=1, keepdims=True)


class OpaqueParams(Centroids):
    def get_params(self):
        return {"scaler": object()}


def broken_constructor(random_state: int = 0):
    raise RuntimeError("cannot build")


BROKEN = {
    # factory: the checks that must fail (exactly these)
    Unnormalised: {"binary", "multiclass", "evaluator-bin", "evaluator-multi"},
    NoReturnSelf: {"binary", "multiclass"},
    WritesIntoX: {"binary", "multiclass", "evaluator-bin", "evaluator-multi"},
    Unseeded: {"repeatable"},
    GlobalRandom: {"global-rng"},
    BatchStatistics: {"row-order"},
    BinaryOnly: {"multiclass", "evaluator-multi"},
    OpaqueParams: {"params", "evaluator-bin", "evaluator-multi"},
    broken_constructor: {"construct"},
}


def test_a_correct_model_passes_every_check(registered):
    report = check_model(registered("t-centroids", Centroids), rows=64)
    assert report.passed, report.format()
    assert [r.status for r in report.results if r.name != "accuracy"] == ["pass"] * 9


@pytest.mark.parametrize("factory", list(BROKEN), ids=lambda f: f.__name__)
def test_each_broken_contract_is_caught_by_its_check(factory, registered):
    report = check_model(registered(f"t-{factory.__name__}", factory), rows=64)
    assert {r.name for r in report.failures} == BROKEN[factory], report.format()
    assert not report.passed


def test_failure_messages_say_what_to_fix(registered):
    report = check_model(registered("t-writer", WritesIntoX), rows=64)
    binary = next(r for r in report.results if r.name == "binary")
    assert "read-only" in binary.detail and "copy before writing" in binary.detail

    report = check_model(registered("t-global", GlobalRandom), rows=64)
    rng = next(r for r in report.results if r.name == "global-rng")
    assert rng.detail.startswith("the global random state of numpy changed")

    report = check_model(registered("t-broken", broken_constructor), rows=64)
    assert report.results[0].detail == "RuntimeError: cannot build"
    assert {r.status for r in report.results[1:]} == {"skip"}


def test_synthetic_data_is_shaped_like_prepared_data():
    data = synthetic_data(rows=100, n_classes=4, n_features=30, seed=3)
    assert data.X_train.shape == (100, 30) and data.X_train.dtype == np.float32
    assert data.y_train.dtype == np.int64
    for y in (data.y_train, data.y_val, data.y_test):
        assert set(np.unique(y)) == {0, 1, 2, 3}  # every class in every split
    assert np.bincount(data.y_train).argmax() == 0  # "normal" is the largest class
    assert not data.X_train.flags.writeable
    assert data.categorical_groups == {"cat": [26, 27, 28, 29]}
    np.testing.assert_array_equal(data.X_test, synthetic_data(100, 4, 30, seed=3).X_test)
    with pytest.raises(ConfigError, match="n_classes must be 2..6, got 9"):
        synthetic_data(n_classes=9)


# --------------------------------------------------------------------------------------------
# adapters


def mlp_module(n_features: int, n_classes: int, hidden: int = 8):
    """Test MLP"""
    from torch import nn

    return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def test_torch_model_is_kind_torch_and_takes_the_profile(registered, one_torch_thread):
    name = registered("t-mlp", torch_model(mlp_module))
    spec = get_model_spec(name)
    assert spec.kind == "torch"
    assert spec.description == "Test MLP"
    assert spec.source == f"module {__name__}"
    assert spec.defined_at.endswith(f"{__file__}:{mlp_module.__code__.co_firstlineno}")

    # the paper profile (no early stopping, batch 512, lr 1e-3) with epochs overridden to 2
    data = synthetic_data(rows=96)
    cfg = DataConfig(dataset="synthetic", split="random")
    (job,) = build_jobs(cfg, [name], [0], profile="paper", training={"epochs": 2})
    record, _ = run_job(job, data)
    assert record["status"] == "ok", record.get("error")
    assert record["timing"]["epochs_run"] == 2
    assert record["params"]["batch_size"] == 512 and record["params"]["early_stopping"] is False
    assert record["params"]["hidden"] == 8


def test_torch_model_parameters_are_checked(registered):
    name = registered("t-mlp", torch_model(mlp_module))
    assert {"hidden", "epochs", "lr", "batch_size", "random_state"} <= accepted_params(
        get_model_spec(name))
    with pytest.raises(ConfigError, match=r"no parameter 'hiden' \(did you mean 'hidden'\?\)"):
        create_model(name, hiden=3)
    assert create_model(name, hidden=3, epochs=1).module_params == {"hidden": 3}


def test_sklearn_model_takes_the_estimators_parameters_and_seed(registered):
    from sklearn.ensemble import RandomForestClassifier

    @sklearn_model
    def forest(n_estimators: int = 10, max_depth: int | None = None):
        """Forest for tests"""
        return RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth)

    name = registered("t-forest", forest)
    spec = get_model_spec(name)
    assert spec.kind == "other" and spec.description == "Forest for tests"
    assert accepted_params(spec) == {"n_estimators", "max_depth", "random_state", "class_weight"}

    model = create_model(name, random_state=7, n_estimators=5, class_weight="balanced")
    data = synthetic_data(rows=64)
    model.fit(data.X_train, data.y_train)
    assert model.estimator_.random_state == 7
    assert model.estimator_.class_weight == "balanced"
    assert model.get_params()["n_estimators"] == 5

    # --device reaches only models that take it
    job = JobSpec(DataConfig(dataset="synthetic"), name, training={"device": "cpu"})
    assert "device" not in model_kwargs(job)


def test_sklearn_model_over_kwargs_factory_learns_names_from_the_estimator(registered):
    from sklearn.linear_model import LogisticRegression

    name = registered("t-logreg", sklearn_model(lambda **p: LogisticRegression(**p)))
    known = accepted_params(get_model_spec(name))
    assert {"C", "max_iter", "random_state", "class_weight"} <= known
    with pytest.raises(ConfigError, match="did you mean 'max_iter'"):
        create_model(name, max_iters=10)


def test_sklearn_adapter_weights_rows_when_the_estimator_has_no_class_weight(registered):
    from sklearn.naive_bayes import GaussianNB

    name = registered("t-nb", sklearn_model(lambda: GaussianNB()))
    data = synthetic_data(rows=96, n_classes=3)
    plain = create_model(name).fit(data.X_train, data.y_train)
    balanced = create_model(name, class_weight="balanced").fit(data.X_train, data.y_train)
    # balanced weights make the rare class's prior equal to the others'
    np.testing.assert_allclose(balanced.estimator_.class_prior_, [1 / 3] * 3, rtol=1e-6)
    assert plain.estimator_.class_prior_[0] > 0.45


def test_sklearn_adapter_refuses_an_estimator_without_probabilities():
    from sklearn.svm import LinearSVC

    from idsbench.models import SklearnAdapter

    with pytest.raises(ConfigError, match="LinearSVC has no predict_proba.*CalibratedClassifierCV"):
        SklearnAdapter(LinearSVC())


# --------------------------------------------------------------------------------------------
# the registry


def test_unknown_name_lists_the_known_ones_and_suggests_the_closest():
    with pytest.raises(UnknownNameError) as info:
        get_model_spec("xgbost")
    message = str(info.value)
    assert message.startswith("unknown model 'xgbost'; known models: ")
    for name in list_models():
        assert name in message
    assert message.endswith("Did you mean 'xgboost'?")


def test_registering_a_name_twice_names_both_places(registered):
    registered("t-twice", Centroids)
    with pytest.raises(ConfigError) as info:
        register_model("t-twice")(Unnormalised)
    text = str(info.value)
    assert "model name 't-twice' registered twice" in text
    assert text.count(__file__) == 2 and f"(module {__name__})" in text


@pytest.mark.parametrize("bad", ["", "a:b", "a,b"])
def test_model_names_that_the_command_line_cannot_express_are_refused(bad):
    with pytest.raises(ConfigError, match="non-empty string without ':' or ','"):
        register_model(bad)
