"""The model contract every idsbench model follows, and adapters that make it free to follow.

Contract
--------
A *model factory* is a callable ``factory(random_state=0, **params)`` that returns an unfitted
*model*.  A class is a factory; so is any function.  The registry calls it once per job.

* **Constructor.**  Only stores its arguments.  No randomness is drawn, no global random
  state is seeded and no data is touched before ``fit``.  ``random_state`` (an int) is the
  job's seed; the same seed on the same data must give the same probabilities.
* **fit(X, y, X_val=None, y_val=None, sample_weight=None)** trains and returns ``self``.

  - ``X``: float32 array (n_rows x n_features), already encoded and scaled, all finite.  It may
    be read-only (the data cache hands out memory maps): copy before modifying it.
  - ``y``: int64 class codes ``0..K-1``; ``K = y.max() + 1`` classes.  ``K`` is 2 for the
    binary task (0 = normal, 1 = attack) and larger for the multiclass task.
  - ``X_val``, ``y_val``: a validation split carved from the training rows only (never the
    test rows), for early stopping or model selection; may be ``None``.  Models that do not
    need it ignore it.
  - ``sample_weight``: optional per-row weights (float, length n_rows).
* **predict_proba(X)** returns an (n_rows x K) array of finite, non-negative probabilities
  whose rows sum to 1.  Each row depends on that row only: the order of the rows and how they
  are batched make no difference.
* **predict(X)** returns the arg-max class codes (:class:`BaseModel` derives it).
* Optional: ``get_params()`` (a JSON-serialisable dict, stored in the run record),
  ``n_params_`` (trainable parameter count), ``epochs_run_``, ``history_`` and
  ``describe(feature_names)`` (a JSON-serialisable summary of what was learned, stored as the
  record's ``fitted``; the stump returns its rule).
* Randomness is passed in, never taken from or left in global state: after ``fit`` the global
  random generators of ``random``, NumPy and torch are as they were before.

Run ``idsbench models check NAME`` (see :mod:`idsbench.conformance`) to test a model against
this contract; the test suite runs the same checks over every registered model.

Adapters
--------
:func:`sklearn_model` turns a function returning a scikit-learn-style classifier into a
factory; :func:`idsbench.models.torch_base.torch_model` does the same for a function returning a
``torch.nn.Module``, which is then trained by the suite's own loop.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Iterable

import numpy as np

from idsbench.errors import ConfigError, ModelError


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
    """Wrap any scikit-learn-style classifier (``fit`` / ``predict_proba``) into the contract.

    Parameters
    ----------
    estimator : object
        An unfitted classifier.  It is cloned (or deep-copied, when it is not a scikit-learn
        estimator) at every ``fit``, so one adapter can be fitted repeatedly.
    random_state : int
        Set as the estimator's ``random_state`` when it has that parameter.
    class_weight : None or ``"balanced"``
        ``"balanced"`` sets the estimator's own ``class_weight`` when it has one, else it
        becomes per-row sample weights (inverse class frequency).
    pass_sample_weight : bool
        Pass ``sample_weight`` to the estimator's ``fit``; turn off for estimators that do not
        take it.

    Notes
    -----
    Probabilities are re-indexed to all ``K = y.max() + 1`` classes, so a class the estimator
    never saw gets probability 0 instead of shifting the columns.
    """

    def __init__(self, estimator, random_state: int = 0, class_weight: str | None = None,
                 pass_sample_weight: bool = True):
        if not callable(getattr(estimator, "predict_proba", None)):
            raise ConfigError(
                f"SklearnAdapter: {type(estimator).__name__} has no predict_proba(); idsbench "
                "needs class probabilities (wrap it in sklearn.calibration.CalibratedClassifierCV)"
            )
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be None or 'balanced', got {class_weight!r}")
        self.estimator = estimator
        self.random_state = random_state
        self.class_weight = class_weight
        self.pass_sample_weight = pass_sample_weight
        self._params = {"estimator": type(estimator).__name__, "class_weight": class_weight}

    def _fresh_estimator(self):
        # clone() keeps only the constructor parameters; other classifiers are copied whole
        try:
            from sklearn.base import clone

            est = clone(self.estimator)
        except TypeError:
            est = copy.deepcopy(self.estimator)
        params = est.get_params() if callable(getattr(est, "get_params", None)) else {}
        if "random_state" in params:
            est.set_params(random_state=self.random_state)
        if self.class_weight and "class_weight" in params:
            est.set_params(class_weight=self.class_weight)
        return est, params

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        est, params = self._fresh_estimator()
        y = np.asarray(y)

        # an estimator without its own class_weight gets the same effect through row weights
        if self.class_weight == "balanced" and "class_weight" not in params:
            from sklearn.utils.class_weight import compute_sample_weight

            balanced = compute_sample_weight("balanced", y)
            sample_weight = balanced if sample_weight is None else sample_weight * balanced

        if sample_weight is not None and self.pass_sample_weight:
            est.fit(X, y, sample_weight=sample_weight)
        else:
            est.fit(X, y)
        self.estimator_ = est
        self.n_classes_ = int(np.max(y)) + 1
        if params:
            self._params.update({k: _jsonable(v) for k, v in est.get_params(deep=False).items()})
        return self

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise ModelError(f"SklearnAdapter({type(self.estimator).__name__}).predict_proba "
                             "called before fit")
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        classes = np.asarray(self.estimator_.classes_, dtype=int)
        out = np.zeros((proba.shape[0], self.n_classes_))
        out[:, classes] = proba
        return out


def sklearn_model(estimator_factory: Callable[..., Any]) -> Callable[..., SklearnAdapter]:
    """Turn a function returning a scikit-learn-style classifier into an idsbench model factory.

    Parameters
    ----------
    estimator_factory : callable
        ``estimator_factory(**params)`` returns an unfitted classifier with ``fit`` and
        ``predict_proba``.  Its keyword parameters become the model's parameters (settable with
        ``--model-param``); if it takes ``random_state`` it receives the job's seed.

    Returns
    -------
    callable
        ``factory(random_state=0, class_weight=None, **params) -> SklearnAdapter``.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> rf = sklearn_model(lambda n_estimators=50: RandomForestClassifier(n_estimators))
    """
    own = _named_params(estimator_factory)
    takes_seed = own is not None and "random_state" in own

    def factory(random_state: int = 0, class_weight: str | None = None, **params):
        if takes_seed:
            params["random_state"] = random_state
        return SklearnAdapter(estimator_factory(**params), random_state=random_state,
                              class_weight=class_weight)

    def accepted() -> set[str] | None:
        names = _named_params(estimator_factory)
        if names is None:
            # `lambda **p: Estimator(**p)`: the estimator's own parameters are the ones taken
            try:
                names = set(estimator_factory().get_params(deep=False))
            except Exception:  # noqa: BLE001 - only a hint for parameter checking
                return None
        return names | {"random_state", "class_weight"}

    return describe_factory(factory, estimator_factory, accepted=accepted)


def describe_factory(factory: Callable, origin: Callable, *, accepted: Callable | None = None,
                     kind: str | None = None) -> Callable:
    """Label an adapter-made ``factory`` with what the registry should know about ``origin``.

    The registry reads these attributes: ``idsbench_origin`` (where the model was defined, and
    so where it comes from), ``idsbench_params`` (a callable giving the accepted parameter
    names, or None for "anything") and ``idsbench_kind``.  Name and docstring are copied so
    that ``idsbench models list`` shows the user's description.
    """
    factory.__doc__ = getattr(origin, "__doc__", None)
    factory.__name__ = getattr(origin, "__name__", factory.__name__)
    factory.__qualname__ = getattr(origin, "__qualname__", factory.__name__)
    factory.__module__ = getattr(origin, "__module__", factory.__module__)
    factory.idsbench_origin = origin
    if accepted is not None:
        factory.idsbench_params = accepted
    if kind is not None:
        factory.idsbench_kind = kind
    return factory


def adapter_params(fn: Callable, *, skip: Iterable[str] = (),
                   plus: Callable | None = None) -> set[str] | None:
    """Parameter names an adapter-made factory takes: those of ``fn`` (minus ``skip``) and the
    named ones of ``plus`` (its ``**kwargs`` ignored); None when ``fn`` takes ``**kwargs``."""
    own = _named_params(fn, skip)
    if own is None or plus is None:
        return own
    return own | (_named_params(plus, ignore_var_keyword=True) or set())


def keyword_defaults(fn: Callable, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The parameters of ``fn`` that have defaults, with those defaults."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in sig.parameters.items()
            if p.default is not p.empty and n not in skip
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _named_params(fn: Callable, skip: Iterable[str] = (),
                  ignore_var_keyword: bool = False) -> set[str] | None:
    """Keyword-capable parameter names of ``fn``; None when it also takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = {p.kind for p in sig.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds and not ignore_var_keyword:
        return None
    return {n for n, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self", *skip}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)
