"""The evaluator against hand-computed values (issue 2)."""

from __future__ import annotations

import numpy as np
import pytest

from idsbench.errors import ModelError
from idsbench.evaluation import check_probabilities, classification_metrics


def test_multiclass_metrics_with_a_class_never_predicted():
    # 3 classes; class 2 is never predicted
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    m = classification_metrics(y_true, y_pred, classes=["a", "b", "c"])

    assert m["accuracy"] == pytest.approx(4 / 8)
    # class a: tp 2, predicted 4, support 3 -> P 0.5, R 2/3, F1 4/7
    assert m["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["a"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["f1"] == pytest.approx(4 / 7)
    # class b: tp 2, predicted 4, support 2 -> P 0.5, R 1, F1 2/3
    assert m["per_class"]["b"]["f1"] == pytest.approx(2 / 3)
    # class c: never predicted, still reported with zeros
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3,
                                   "predicted": 0}
    assert m["f1_macro"] == pytest.approx((4 / 7 + 2 / 3 + 0) / 3)
    assert m["f1_weighted"] == pytest.approx((3 * 4 / 7 + 2 * 2 / 3) / 8)
    assert m["precision_macro"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [2, 1, 0]]


def test_binary_metrics_attack_class_fpr_auc():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    score = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 0.8, 0.7, 0.4])
    proba = np.column_stack([1 - score, score])
    m = classification_metrics(y_true, y_pred, proba, ["normal", "attack"], task="binary")
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["fpr"] == pytest.approx(1 / 4)
    # ranking: one attack (0.4) below one normal (0.6): AUC = 15/16
    assert m["roc_auc"] == pytest.approx(15 / 16)


@pytest.mark.parametrize("bad, message", [
    (np.array([[0.5, 0.5], [np.nan, 1.0]]), "NaN or infinite"),
    (np.array([[0.5, 0.5, 0.0]] * 2), "shape"),
    (np.array([[0.9, 0.9], [0.5, 0.5]]), "sum to 1"),
])
def test_probability_contract(bad, message):
    with pytest.raises(ModelError, match=message):
        check_probabilities(bad, 2, 2, "m")


def test_stump_names_the_feature_and_threshold_it_chose():
    from idsbench.models.classic import StumpModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 2] > 0.25).astype(np.int64)  # only the third column carries the label
    model = StumpModel().fit(X, y)
    desc = model.describe(["a", "b", "c"])
    assert desc["feature"] == "c"
    lo, hi = X[y == 0, 2].max(), X[y == 1, 2].min()
    assert lo <= desc["threshold"] <= hi
    assert desc["rule"].startswith("c <= ")
    # one class only: no split, said so instead of naming a feature
    assert StumpModel().fit(X, np.zeros(400, dtype=np.int64)).describe(["a", "b", "c"])["feature"] is None
