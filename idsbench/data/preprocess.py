"""Feature encoding, fitted on training rows only.

Numeric columns: median imputation (with a missing-indicator column where training data had
gaps), signed ``log1p`` (byte and packet counts span many orders of magnitude), standard
scaling.  Boolean ``T``/``F``/``-`` columns: 1/0, with ``-`` imputed as 0 plus an indicator.
Categorical columns: one-hot, the ``-`` placeholder a level of its own, values unseen in
training encoded as all zeros.  Identity columns only when asked for; free text never.
"""

from __future__ import annotations

import numpy as np

from idsbench.data.manifest import Manifest

PREP_VERSION = 2


def signed_log1p(x):
    return np.sign(x) * np.log1p(np.abs(x))


def build_preprocessor(manifest: Manifest, identity: bool = False, max_categories: int | None = None):
    """A scikit-learn ColumnTransformer for ``manifest``'s feature columns (unfitted)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    numeric = list(manifest.numeric)
    categorical = list(manifest.categorical)
    if identity:
        numeric += [c for c in manifest.identity if c not in manifest.identity_categorical]
        categorical += list(manifest.identity_categorical)

    numeric_pipe = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        FunctionTransformer(signed_log1p, feature_names_out="one-to-one"),
        StandardScaler(),
    )
    boolean_pipe = SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True,
                                 keep_empty_features=True)
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32,
                           max_categories=max_categories)
    transformers = [("num", numeric_pipe, numeric)]
    if manifest.boolean:
        transformers.append(("bool", boolean_pipe, list(manifest.boolean)))
    if categorical:
        transformers.append(("cat", onehot, categorical))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0,
                             verbose_feature_names_out=True)


def feature_columns(manifest: Manifest, identity: bool) -> list[str]:
    return manifest.feature_columns(identity=identity)


def transform_checked(pre, df) -> tuple[np.ndarray, int]:
    """Transform to float32 and enforce the non-finite policy: set to 0, and count."""
    X = np.asarray(pre.transform(df), dtype=np.float32)
    bad = ~np.isfinite(X)
    n_bad = int(bad.sum())
    if n_bad:
        X[bad] = 0.0
    return X, n_bad
