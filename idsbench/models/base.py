"""The model contract every idsbench model follows, and an adapter for scikit-learn estimators.

Contract
--------
* The constructor only stores its arguments; it takes ``random_state`` (int) and keyword
  parameters.  No randomness is consumed and no global state is touched before ``fit``.
* ``fit(X, y, X_val=None, y_val=None, sample_weight=None)`` trains on float32 features ``X``
  (n_rows x n_features, already encoded and scaled, all finite) and integer labels ``y`` in
  ``0..K-1``.  ``X_val``/``y_val`` is a validation split carved from training data only, for
  early stopping; models that do not need it ignore it.  Returns ``self``.
* ``predict_proba(X)`` returns an (n_rows x K) array of finite probabilities summing to 1.
* ``predict(X)`` returns the arg-max class codes.
* Optional: ``n_params_`` (trainable parameter count), ``epochs_run_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class BaseModel:
    """Convenience base: ``predict`` from ``predict_proba``, parameters kept for the record."""

    random_state: int = 0

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):  # pragma: no cover
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.predict_proba(X)).argmax(axis=1)

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, for the record."""
        return dict(getattr(self, "_params", {}))


class SklearnAdapter(BaseModel):
    """Wrap any scikit-learn-style classifier (``fit``/``predict_proba``) into the contract.

    ``estimator`` is an unfitted estimator.  If it has a ``random_state`` parameter it is set
    from the job's seed.  Probabilities are re-indexed to all ``K`` classes seen in ``y``.
    """

    def __init__(self, estimator, random_state: int = 0, pass_sample_weight: bool = True):
        self.estimator = estimator
        self.random_state = random_state
        self.pass_sample_weight = pass_sample_weight
        self._params = {"estimator": type(estimator).__name__}

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        from sklearn.base import clone

        est = clone(self.estimator)
        if "random_state" in est.get_params():
            est.set_params(random_state=self.random_state)
        if sample_weight is not None and self.pass_sample_weight:
            est.fit(X, y, sample_weight=sample_weight)
        else:
            est.fit(X, y)
        self.estimator_ = est
        self.n_classes_ = int(np.max(y)) + 1
        self._params.update({k: _jsonable(v) for k, v in est.get_params(deep=False).items()})
        return self

    def predict_proba(self, X) -> np.ndarray:
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        classes = np.asarray(self.estimator_.classes_, dtype=int)
        out = np.zeros((proba.shape[0], self.n_classes_))
        out[:, classes] = proba
        return out


def sklearn_model(estimator_factory):
    """Turn a function returning an sklearn estimator into an idsbench model factory.

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> rf = sklearn_model(lambda **p: RandomForestClassifier(n_estimators=50, **p))
    """

    def factory(random_state: int = 0, **params):
        return SklearnAdapter(estimator_factory(**params), random_state=random_state)

    factory.__doc__ = estimator_factory.__doc__
    factory.__name__ = getattr(estimator_factory, "__name__", "sklearn_model")
    return factory


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)
