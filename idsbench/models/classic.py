"""Non-network models: XGBoost and the one-feature ``stump`` baseline."""

from __future__ import annotations

import numpy as np

from idsbench.models.base import BaseModel
from idsbench.models.registry import register_model


@register_model("xgboost", description="Gradient-boosted trees (XGBoost, hist), early-stopped on validation")
class XGBoostModel(BaseModel):
    """XGBoost with the ``hist`` tree method.

    Early stopping on the validation split (``early_stopping_rounds``) when one is given.
    ``class_weight="balanced"`` becomes per-row sample weights.
    """

    def __init__(self, random_state: int = 0, n_estimators: int = 300, max_depth: int = 8,
                 learning_rate: float = 0.1, subsample: float = 0.9, colsample_bytree: float = 0.9,
                 early_stopping_rounds: int = 20, n_jobs: int | None = None,
                 class_weight: str | None = None, device: str = "auto"):
        self.random_state = random_state
        self._params = dict(n_estimators=n_estimators, max_depth=max_depth,
                            learning_rate=learning_rate, subsample=subsample,
                            colsample_bytree=colsample_bytree,
                            early_stopping_rounds=early_stopping_rounds, class_weight=class_weight)
        self.n_jobs = n_jobs
        self.class_weight = class_weight
        self.device = device

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        import xgboost as xgb

        from idsbench.models.torch_base import resolve_device

        p = dict(self._params)
        p.pop("class_weight")
        use_val = X_val is not None and y_val is not None and len(y_val) > 0
        if not use_val:
            p.pop("early_stopping_rounds")
        dev = resolve_device(self.device).type
        self.n_classes_ = int(np.max(y)) + 1
        objective = "binary:logistic" if self.n_classes_ == 2 else "multi:softprob"
        self.model_ = xgb.XGBClassifier(tree_method="hist", random_state=self.random_state,
                                        n_jobs=self.n_jobs, objective=objective, device=dev, **p)
        if self.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_sample_weight

            bal = compute_sample_weight("balanced", y)
            sample_weight = bal if sample_weight is None else sample_weight * bal
        fit_kw = {"sample_weight": sample_weight, "verbose": False}
        if use_val:
            fit_kw["eval_set"] = [(X_val, y_val)]
        self.model_.fit(X, y, **fit_kw)
        self.best_iteration_ = getattr(self.model_, "best_iteration", None)
        return self

    def predict_proba(self, X) -> np.ndarray:
        proba = self.model_.predict_proba(X).astype(np.float64)
        return proba if proba.shape[1] == self.n_classes_ else np.column_stack([1 - proba, proba])


@register_model("stump", description="Best single-feature rule (a depth-1 tree) chosen on training data")
class StumpModel(BaseModel):
    """One-feature baseline: how far a shortcut alone goes.

    A depth-1 decision tree (scikit-learn, Gini impurity) over all features picks the single
    feature and threshold that best separates the training labels.  ``feature_`` and
    ``threshold_`` name the rule after ``fit``.  For K > 2 classes it predicts at most two
    classes (one per side of the threshold), which is the point: it is a shortcut detector.
    """

    def __init__(self, random_state: int = 0, class_weight: str | None = None):
        self.random_state = random_state
        self.class_weight = class_weight
        self._params = {"max_depth": 1, "class_weight": class_weight}

    def fit(self, X, y, X_val=None, y_val=None, sample_weight=None):
        from sklearn.tree import DecisionTreeClassifier

        self.n_classes_ = int(np.max(y)) + 1
        self.tree_ = DecisionTreeClassifier(max_depth=1, random_state=self.random_state,
                                            class_weight=self.class_weight)
        self.tree_.fit(X, y, sample_weight=sample_weight)
        self.feature_ = int(self.tree_.tree_.feature[0])
        self.threshold_ = float(self.tree_.tree_.threshold[0])
        return self

    def predict_proba(self, X) -> np.ndarray:
        proba = self.tree_.predict_proba(X)
        out = np.zeros((proba.shape[0], self.n_classes_))
        out[:, self.tree_.classes_.astype(int)] = proba
        return out

    def describe(self, feature_names: list[str]) -> dict:
        """The rule, in the encoded feature space the model saw (scaled numbers, 0/1 one-hots)."""
        if self.feature_ < 0:  # the tree made no split: every training row had one class
            return {"rule": "(no split: one class)", "feature": None, "threshold": None}
        name = feature_names[self.feature_] if self.feature_ < len(feature_names) else f"x{self.feature_}"
        return {"rule": f"{name} <= {self.threshold_:.4g}", "feature": name,
                "threshold": self.threshold_, "units": "encoded (scaled; one-hot columns are 0/1)"}
