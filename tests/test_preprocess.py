"""Preprocessing is fitted on training rows only; splits and subsamples (issue 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idsbench.data import DataConfig, get_manifest, prepare
from idsbench.data.preprocess import build_preprocessor
from idsbench.data.splits import stratified_subsample
from idsbench.errors import ConfigError
from tests.synth import toniot_frame, write_csv


def _fit_and_transform(train: pd.DataFrame, test: pd.DataFrame):
    m = get_manifest("toniot")
    pre = build_preprocessor(m).fit(train[m.feature_columns()])
    return pre, pre.transform(test[m.feature_columns()])


def test_scaler_and_encoder_see_training_rows_only():
    m = get_manifest("toniot")
    train = toniot_frame(300, seed=1)
    for col in m.numeric + m.boolean:
        train[col] = pd.to_numeric(train[col].replace({"T": 1, "F": 0, "-": np.nan}))
    test = train.copy()
    test["duration"] = 1e9  # a test-only extreme value
    test["proto"] = "sctp"  # a test-only category

    pre, _ = _fit_and_transform(train, test)
    pre_leaky, _ = _fit_and_transform(pd.concat([train, test]), test)

    names = list(pre.get_feature_names_out())
    # scaling statistics come from training rows: adding test rows would change them
    scaler = pre.named_transformers_["num"][-1]
    leaky_scaler = pre_leaky.named_transformers_["num"][-1]
    i = m.numeric.index("duration")
    assert scaler.mean_[i] != pytest.approx(leaky_scaler.mean_[i])
    # the test-only category gets no column (encoded as all zeros), unlike a leaky fit
    assert not any("sctp" in n for n in names)
    assert any("sctp" in n for n in pre_leaky.get_feature_names_out())


def test_prepare_fits_on_training_rows_only(tmp_path):
    """End to end: changing only test rows leaves training features unchanged."""
    df = toniot_frame(600, seed=2)
    write_csv(df, tmp_path / "a" / "ton-iot" / "train_test_network.csv")
    cfg = dict(dataset="toniot", allow_checksum_mismatch=True)
    base = prepare(DataConfig(**cfg, data_dir=str(tmp_path / "a")), use_cache=False)

    # same rows, but the values of the rows that land in the test split are changed
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(df))
    _, test_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=df["type"])
    changed = df.copy()
    changed.loc[test_idx, "duration"] = 1e7
    changed.loc[test_idx, "service"] = "never-seen"
    write_csv(changed, tmp_path / "b" / "ton-iot" / "train_test_network.csv")
    other = prepare(DataConfig(**cfg, data_dir=str(tmp_path / "b")), use_cache=False)

    assert np.array_equal(base.X_train, other.X_train)
    assert np.array_equal(base.X_val, other.X_val)
    assert not np.array_equal(base.X_test, other.X_test)
    assert base.feature_names == other.feature_names


def test_stratified_subsample_keeps_every_class():
    y = np.array([0] * 1000 + [1] * 100 + [2] * 3)
    pick = stratified_subsample(y, 110, seed=0)
    counts = np.bincount(y[pick], minlength=3)
    assert counts[2] == 2  # lifted to the floor of two rows
    assert counts[0] == pytest.approx(1000 / 1103 * 110, abs=1)
    assert np.array_equal(pick, stratified_subsample(y, 110, seed=0))
    assert not np.array_equal(pick, stratified_subsample(y, 110, seed=1))
    with pytest.raises(ConfigError, match="smaller than the number of classes"):
        stratified_subsample(y, 2, seed=0)
