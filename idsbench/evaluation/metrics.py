"""The one evaluator: every model's predictions are scored here, the same way.

All metrics come from scikit-learn.  Per-class figures cover the full label list: a class that
is never predicted scores 0 and is reported, never dropped.
"""

from __future__ import annotations

import numpy as np

from idsbench.errors import ModelError


def check_probabilities(proba, n_rows: int, n_classes: int, model: str = "model") -> np.ndarray:
    """The contract for ``predict_proba`` output; a violation is the model's failure."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n_rows, n_classes):
        raise ModelError(f"{model}: predict_proba returned shape {proba.shape}, "
                         f"expected ({n_rows}, {n_classes})")
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        raise ModelError(f"{model}: predict_proba returned NaN or infinite values in "
                         f"{int(bad.sum())} of {n_rows} rows (first row {int(np.flatnonzero(bad)[0])})")
    sums = proba.sum(axis=1)
    if n_rows and (np.abs(sums - 1) > 1e-3).any() or (proba < -1e-9).any():
        raise ModelError(f"{model}: predict_proba rows must be non-negative and sum to 1 "
                         f"(row sums range {sums.min():.4f}..{sums.max():.4f})")
    return proba


def classification_metrics(y_true, y_pred, proba=None, classes: list[str] | None = None,
                           task: str = "multiclass") -> dict:
    """Accuracy; macro and weighted precision/recall/F1; per class; confusion matrix.

    For ``task == "binary"`` (class 1 = attack) also the attack class's precision, recall and
    F1, the false-positive rate (normal rows flagged as attacks) and ROC-AUC from ``proba``.
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    k = len(classes) if classes is not None else int(max(y_true.max(), y_pred.max())) + 1
    labels = list(range(k))
    names = classes or [str(i) for i in labels]

    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred))
        if len(np.unique(y_true)) > 1 else float("nan"),
        "n": int(len(y_true)),
    }
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(ap), float(ar), float(af)
    out["per_class"] = {
        names[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                   "support": int(s[i]), "predicted": int((y_pred == i).sum())}
        for i in labels
    }
    out["confusion_matrix"] = skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()

    if task == "binary":
        out["precision"], out["recall"], out["f1"] = float(p[1]), float(r[1]), float(f[1])
        cm = np.asarray(out["confusion_matrix"])
        negatives = cm[0].sum()
        out["fpr"] = float(cm[0, 1] / negatives) if negatives else float("nan")
        if proba is not None and len(np.unique(y_true)) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, np.asarray(proba)[:, 1]))
        else:
            out["roc_auc"] = float("nan")
    return out
