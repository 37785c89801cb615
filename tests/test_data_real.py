"""The real files: identity, row and class counts, checksums, splits (issue 2)."""

from __future__ import annotations

import numpy as np
import pytest

from idsbench.data import DataConfig, get_manifest, prepare
from idsbench.data.io import load_table
from idsbench.data.prepare import locate
from idsbench.errors import DataError

pytestmark = pytest.mark.realdata

# published counts (shared/datasets/PROVENANCE.md)
UNSW_TEST_COUNTS = {"Normal": 37000, "Generic": 18871, "Exploits": 11132, "Fuzzers": 6062,
                    "DoS": 4089, "Reconnaissance": 3496, "Analysis": 677, "Backdoor": 583,
                    "Shellcode": 378, "Worms": 44}
TON_COUNTS = {"normal": 50000, "backdoor": 20000, "ddos": 20000, "dos": 20000,
              "injection": 20000, "password": 20000, "ransomware": 20000, "scanning": 20000,
              "xss": 20000, "mitm": 1043}


def test_unsw_testing_partition_is_identified_by_content(real_data_dir):
    m = get_manifest("unsw")
    _, _, found = locate(m, str(real_data_dir))
    (f, df, report), = found
    assert f.role == "test" and f.status == "verified"
    assert f.sha256 == "734fe6642edf758f7c94d7d9149426b49d202fe8e7bf0bef47392489c3c0a559"
    assert len(df) == 82332
    assert df["attack_cat"].value_counts().to_dict() == UNSW_TEST_COUNTS
    assert int(df["label"].sum()) == 45332
    # the BOM is gone from the first column name
    assert "id" in df.columns and not any("\ufeff" in c for c in df.columns)


def test_toniot_file_counts_and_checksum(real_data_dir):
    m = get_manifest("toniot")
    path = real_data_dir / "ton-iot" / "train_test_network.csv.gz"
    df, report, sha = load_table(path, m)
    assert sha == m.files["all"].sha256
    assert len(df) == 211043
    assert df["type"].value_counts().to_dict() == TON_COUNTS
    assert (df["label"] == (df["type"] != "normal")).all()
    # '-' placeholders in a numeric column are missing values, not bad values
    assert report.placeholders["http_trans_depth"] > 200000
    assert report.bad_values == {}


def test_official_unsw_split_reports_the_missing_training_partition(real_data_dir):
    with pytest.raises(DataError) as err:
        prepare(DataConfig("unsw", split="official", data_dir=str(real_data_dir)))
    msg = str(err.value)
    assert "UNSW_NB15_training-set.csv" in msg and "175,341" in msg
    assert "bec7dd5ec88dc2a0ccc7a07879d338395ed7421750f675fd0339e07dfe0648fa" in msg
    assert "--split random" in msg


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_toniot_random_split_is_stratified_and_disjoint(real_data_dir, task):
    d = prepare(DataConfig("toniot", task=task, data_dir=str(real_data_dir)))
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 211043
    assert len(d.y_test) == pytest.approx(0.2 * 211043, abs=2)
    assert d.info["test_class_counts"]["normal"] == 10000
    if task == "multiclass":
        assert d.info["test_class_counts"]["mitm"] == pytest.approx(209, abs=1)
        assert list(d.classes) == list(TON_COUNTS)
    # identity and free-text columns are not features by default
    used = set(d.info["feature_columns"])
    for col in ("src_ip", "dst_ip", "src_port", "dst_port", "dns_query", "http_user_agent"):
        assert col not in used
    assert {"src_ip_bytes", "proto", "dns_AA"} <= used
    assert np.isfinite(d.X_train).all() and np.isfinite(d.X_test).all()
    assert d.X_train.dtype == np.float32


def test_same_split_for_both_tasks(real_data_dir):
    a = prepare(DataConfig("unsw", task="binary", split="random", data_dir=str(real_data_dir)))
    b = prepare(DataConfig("unsw", task="multiclass", split="random", data_dir=str(real_data_dir)))
    assert np.array_equal(a.X_test, b.X_test)
    # label 1 exactly when the class is not Normal
    assert np.array_equal(a.y_test, (b.y_test != b.classes.index("Normal")).astype(int))


def test_identity_columns_switch(real_data_dir):
    keep = prepare(DataConfig("toniot", identity_columns="keep", max_train_rows=5000,
                              data_dir=str(real_data_dir)))
    drop = prepare(DataConfig("toniot", identity_columns="drop", max_train_rows=5000,
                              data_dir=str(real_data_dir)))
    assert any("src_port" in n for n in keep.feature_names)
    assert not any("src_port" in n for n in drop.feature_names)
    assert keep.info["protocol"]["identity_columns"] == "keep"
