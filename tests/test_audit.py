"""The data audit (issue 11): figures on constructed tables with known answers, on the real
files against their published figures, and the unseen-row scores of a real benchmark run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from idsbench.audit import audit_dataset, audit_tables, render_markdown, write_audit
from idsbench.cli import cli
from idsbench.data import DataConfig, get_manifest, prepare
from idsbench.data.io import load_table
from idsbench.errors import ConfigError
from tests.synth import toniot_frame, write_csv

N_POOL, N_TEST = 300, 100
TWIN_SOURCE = {100: "normal", 101: "normal", 102: "dos", 103: "dos", 104: "dos", 105: "xss"}


# --------------------------------------------------------------------------------------------
# constructed tables: every figure is known from how the rows were made


def _set_types(df: pd.DataFrame, rows, types) -> None:
    df.loc[rows, "type"] = types
    df["label"] = (df["type"] != "normal").astype(int)


def _constructed_raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw ToN_IoT-shaped training and test tables with planted duplicates, twins and so on."""
    m = get_manifest("toniot")
    rng = np.random.default_rng(7)
    pool, test = toniot_frame(N_POOL, seed=1), toniot_frame(N_TEST, seed=2)
    features = m.feature_columns()
    for df in (pool, test):
        # numbers drawn from a range far wider than the row count: every vector is unique
        for col in m.numeric:
            df[col] = rng.integers(0, 10**9, size=len(df))
        df["missed_bytes"] = 0  # constant
        df["dns_qclass"] = 0
        df["type"] = np.resize(["normal", "normal", "dos", "ddos", "xss"], len(df))
        df["label"] = (df["type"] != "normal").astype(int)
    pool.loc[250, "dns_qclass"] = 1  # near-constant: one odd training row in 300
    _set_types(pool, list(TWIN_SOURCE), list(TWIN_SOURCE.values()))
    _set_types(pool, [40, 41, 60], ["normal", "dos", "ddos"])

    # one perfectly predictive column: attacks are 10**10 larger
    for df in (pool, test):
        df["src_bytes"] = rng.integers(0, 10**9, size=len(df)) + df["label"] * 10**10

    # duplicate feature vectors that differ in identity columns (and keep their labels)
    with_targets = features + ["type", "label"]
    pool.loc[20:22, with_targets] = pool.loc[5:7, with_targets].values
    # label conflicts: two vectors with both binary labels, one more with two attack classes
    pool.loc[30:31, features] = pool.loc[40:41, features].values
    _set_types(pool, [30, 31], ["dos", "normal"])
    pool.loc[50, features] = pool.loc[60, features].values
    _set_types(pool, [50], ["dos"])
    # test rows whose feature vector (and label) occurs among the training rows
    twins = list(range(len(TWIN_SOURCE)))
    test.loc[twins, with_targets] = pool.loc[list(TWIN_SOURCE), with_targets].values

    # identity columns follow the label exactly: normal traffic from one host, low ports
    for df in (pool, test):
        attack = df["label"].to_numpy() == 1
        df["src_ip"] = np.where(attack, rng.choice(["198.51.100.3", "198.51.100.4"], len(df)),
                                "192.0.2.1")
        df["src_port"] = np.where(attack, rng.integers(20000, 65535, len(df)),
                                  rng.integers(1, 1000, len(df)))
        df["dst_ip"] = rng.choice(["203.0.113.1", "203.0.113.2", "203.0.113.3"], len(df))
    pool.loc[20:22, "src_port"] = pool.loc[5:7, "src_port"].to_numpy() + 1  # not exact copies

    # exact duplicate rows (every column)
    pool.iloc[10:14] = pool.iloc[0:4].to_numpy()
    test.iloc[90:92] = test.iloc[80:82].to_numpy()

    # placeholders in a numeric column and one value that is not a number
    for df in (pool, test):
        df["http_trans_depth"] = df["http_trans_depth"].astype(str)
        df["duration"] = df["duration"].astype(str)
    pool.loc[200:206, "http_trans_depth"] = "-"
    test.loc[50, "duration"] = "oops"
    return pool, test


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    raw_pool, raw_test = _constructed_raw()
    m = get_manifest("toniot")
    folder = tmp_path_factory.mktemp("audit-constructed")
    pool, rep_pool, _ = load_table(write_csv(raw_pool, folder / "pool.csv"), m, use_cache=False)
    test, rep_test, _ = load_table(write_csv(raw_test, folder / "test.csv"), m, use_cache=False)
    quality = [rep_pool.to_dict(), rep_test.to_dict()]
    result = audit_tables(pool, test, m, quality=quality, near_constant=0.99)
    return {"raw": (raw_pool, raw_test), "tables": (pool, test), "quality": quality,
            "result": result}


def test_duplicates_within_training_and_test_rows(constructed):
    d = constructed["result"]["duplicates"]
    # 4 exact copies; 3 copies differing in a port; 2 + 1 copies with another label
    assert d["train"]["duplicate_rows"] == 4
    assert d["train"]["duplicate_feature_vectors"] == 4 + 3 + 2 + 1
    assert d["train"]["distinct_feature_vectors"] == N_POOL - 10
    assert d["test"]["duplicate_rows"] == 2
    assert d["test"]["duplicate_feature_vectors"] == 2
    # across both: the 6 twins repeat training vectors too
    assert d["all"]["duplicate_rows"] == 6
    assert d["all"]["duplicate_feature_vectors"] == 10 + 2 + 6
    # with addresses and ports as features only the exact copies repeat (the other copies
    # got their own port, drawn from their label's range or shifted by one)
    assert d["train"]["duplicate_feature_vectors_with_identity"] == 4


def test_twins_overall_and_per_class(constructed):
    t = constructed["result"]["twins"]
    assert t["twins"] == 6 and t["unseen"] == N_TEST - 6
    assert t["share"] == pytest.approx(6 / N_TEST)
    expected = pd.Series(TWIN_SOURCE).value_counts().to_dict()
    test = constructed["tables"][1]
    for cls, v in t["per_class"].items():
        assert v["twins"] == expected.get(cls, 0), cls
        assert v["rows"] == int((test["type"] == cls).sum())
    # src_port differs between each twin and its source, so with identity columns none is left
    assert t["with_identity"]["twins"] == 0


def test_label_conflicts_and_accuracy_ceiling(constructed):
    lc = constructed["result"]["label_conflicts"]
    assert lc["binary"]["train"] == {"vectors": 2, "rows": 4,
                                     "accuracy_ceiling": pytest.approx((N_POOL - 2) / N_POOL)}
    assert lc["multiclass"]["train"]["vectors"] == 3 and lc["multiclass"]["train"]["rows"] == 6
    assert lc["multiclass"]["train"]["accuracy_ceiling"] == pytest.approx((N_POOL - 3) / N_POOL)
    assert lc["binary"]["test"]["vectors"] == 0
    assert lc["binary"]["test"]["accuracy_ceiling"] == 1.0
    assert lc["binary"]["all"]["vectors"] == 2


def test_best_single_feature_rule_finds_the_planted_column(constructed):
    r = constructed["result"]["single_feature_rule"]
    assert r["best"]["column"] == "src_bytes"
    assert r["best"]["rule"].startswith("src_bytes <= ")
    # the two conflicting copies are the only training rows the rule gets wrong
    assert r["best"]["train_accuracy"] == pytest.approx((N_POOL - 2) / N_POOL)
    assert r["best"]["test_accuracy"] == 1.0
    test = constructed["tables"][1]
    assert r["majority_class"] == "attack"
    assert r["majority_rate"] == pytest.approx(test["label"].mean())
    assert [x["train_accuracy"] for x in r["top"]] == \
        sorted((x["train_accuracy"] for x in r["top"]), reverse=True)


def test_identity_column_auc(constructed):
    cols = constructed["result"]["identity"]["columns"]
    assert cols["src_ip"]["roc_auc"] == 1.0
    assert cols["src_port"]["roc_auc"] == 1.0
    assert cols["dst_ip"]["roc_auc"] < 0.8  # drawn independently of the label
    assert cols["src_ip"]["distinct_in_train"] == 3


def test_constant_and_near_constant_columns(constructed):
    rows = {r["column"]: r for r in constructed["result"]["constant_columns"]["columns"]}
    assert set(rows) == {"missed_bytes", "dns_qclass"}
    assert rows["missed_bytes"]["constant"] and rows["missed_bytes"]["top_share"] == 1.0
    assert not rows["dns_qclass"]["constant"]
    assert rows["dns_qclass"]["top_share"] == pytest.approx((N_POOL - 1) / N_POOL)
    # at the default threshold (99.9%) one odd row in 300 is not near-constant
    pool, test = constructed["tables"]
    strict = audit_tables(pool, test, get_manifest("toniot"))
    assert [r["column"] for r in strict["constant_columns"]["columns"]] == ["missed_bytes"]


def test_placeholder_and_missing_counts(constructed):
    rows = {r["column"]: r for r in constructed["result"]["placeholders"]["columns"]}
    raw = pd.concat(constructed["raw"], ignore_index=True)
    assert rows["http_trans_depth"]["placeholders"] == 7
    assert rows["http_trans_depth"]["missing"] == 7
    duration = rows["duration"]
    assert (duration["placeholders"], duration["bad_values"], duration["missing"]) == (0, 1, 1)
    for col in ("dns_AA", "service", "dns_query"):  # a flag, a category, free text
        assert rows[col]["placeholders"] == int((raw[col] == "-").sum()), col
    assert "src_bytes" not in rows


def test_report_renders_and_round_trips(constructed, tmp_path):
    result = constructed["result"]
    md_path, json_path = write_audit(result, tmp_path)
    assert md_path.name == "tables-custom.md"
    stored = json.loads(json_path.read_text())
    assert stored["twins"]["twins"] == 6
    text = md_path.read_text()
    assert render_markdown(stored) + "\n" == text  # the report renders from the stored JSON
    assert "## Headlines" in text and "6 of 100 (6.0%)" in text
    for finding in result["findings"]:
        assert finding["meaning"].endswith(".")


def test_bad_arguments_are_config_errors(constructed):
    pool, test = constructed["tables"]
    m = get_manifest("toniot")
    with pytest.raises(ConfigError, match="'binary' or 'multiclass'"):
        audit_tables(pool, test, m, task="ternary")
    with pytest.raises(ConfigError, match="0 test rows"):
        audit_tables(pool, test.iloc[:0], m)


# --------------------------------------------------------------------------------------------
# the real files, against the figures published in shared/datasets/PROVENANCE.md and issue 11


@pytest.fixture(scope="module")
def toniot_audit(real_data_dir):
    return audit_dataset(DataConfig("toniot", data_dir=str(real_data_dir)))


@pytest.mark.realdata
def test_toniot_audit_matches_published_figures(toniot_audit):
    a = toniot_audit
    assert a["n_train"] + a["n_test"] == 211043
    # PROVENANCE: 20,569 rows are exact duplicates over all 44 columns
    assert len(a["duplicates"]["row_columns"]) == 44
    assert a["duplicates"]["all"]["duplicate_rows"] == 20569
    # issue 11: about 58% of test rows have a training twin without identity columns ...
    assert a["twins"]["share"] == pytest.approx(0.58, abs=0.01)
    assert a["twins"]["with_identity"]["share"] < a["twins"]["share"]
    # ... and src_ip alone reaches ROC-AUC 0.997; only 51 distinct source addresses exist
    assert a["identity"]["columns"]["src_ip"]["roc_auc"] == pytest.approx(0.997, abs=0.002)
    assert a["identity"]["columns"]["src_ip"]["distinct_in_train"] <= 51
    # PROVENANCE placeholder counts
    ph = {r["column"]: r["placeholders"] for r in a["placeholders"]["columns"]}
    assert ph["service"] == 132032 and ph["dns_query"] == 176198 and ph["dns_AA"] == 176030
    # a single rule beats always predicting "attack", but far from what models report
    r = a["single_feature_rule"]
    assert r["majority_rate"] < r["best"]["test_accuracy"] < 0.95


@pytest.mark.realdata
def test_unsw_random_audit_through_the_cli(real_data_dir, tmp_path):
    res = CliRunner().invoke(cli, ["datasets", "audit", "unsw", "--split", "random",
                                   "--data-dir", str(real_data_dir), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# Data audit: unsw, split random")
    a = json.loads((tmp_path / "unsw-random.json").read_text())
    assert (tmp_path / "unsw-random.md").read_text().strip() == res.stdout.strip()
    assert a["n_train"] + a["n_test"] == 82332
    # PROVENANCE: ignoring id, 26,387 rows are duplicates; service is '-' in 47,153 rows
    assert "id" not in a["duplicates"]["row_columns"]
    assert a["duplicates"]["all"]["duplicate_rows"] == 26387
    ph = {r["column"]: r["placeholders"] for r in a["placeholders"]["columns"]}
    assert ph == {"service": 47153}
    # issue 11: 40.5% of test rows have an exact training twin
    assert a["twins"]["share"] == pytest.approx(0.405, abs=0.005)
    # the benchmark's own twin flags (hashes of the same rows) agree with the audit's count
    data = prepare(DataConfig("unsw", split="random", data_dir=str(real_data_dir)))
    assert int(data.test_has_train_twin.sum()) == a["twins"]["twins"]


@pytest.mark.realdata
def test_audit_cli_errors_are_one_line(real_data_dir):
    res = CliRunner().invoke(cli, ["datasets", "audit", "unsw", "--data-dir", str(real_data_dir)])
    assert res.exit_code == 2
    assert "UNSW_NB15_training-set.csv" in res.output and "--split random" in res.output
    res = CliRunner().invoke(cli, ["datasets", "audit", "nsl"])
    assert res.exit_code == 2 and "unknown dataset 'nsl'" in res.output


# --------------------------------------------------------------------------------------------
# every model scored on raw and unseen test rows, end to end


@pytest.mark.realdata
@pytest.mark.parametrize("dataset, options", [
    ("toniot", {"identity_columns": "keep", "dedup": "train"}),
    ("unsw", {"split": "random"}),
])
def test_records_score_unseen_rows(real_data_dir, tmp_path, request, dataset, options):
    from idsbench.report.leaderboard import render_leaderboard
    from idsbench.runner import run_benchmark

    # a small forest: this checks the bookkeeping, not XGBoost
    frame = run_benchmark(dataset, models=["stump", "xgboost"], max_train_rows=3000,
                          model_params={"xgboost": {"n_estimators": 20, "max_depth": 4}},
                          out=tmp_path, data_dir=str(real_data_dir), **options)
    cfg = DataConfig(dataset, max_train_rows=3000, data_dir=str(real_data_dir), **options)
    data = prepare(cfg)
    unseen = int((~data.test_has_train_twin).sum())
    assert 0 < unseen < len(data.y_test)
    records = frame.to_dict("records")
    assert [r["status"] for r in records] == ["ok", "ok"], [r["error"] for r in records]
    for r in records:
        assert r["metrics"]["n"] == len(data.y_test)
        assert r["metrics_unseen"]["n"] == unseen
        assert r["metrics_unseen"]["n"] == r["n_test"] - r["data"]["test_rows_with_train_twin"]
        assert 0 <= r["metrics_unseen"]["accuracy"] <= 1
        assert r["protocol"]["identity_columns"] == options.get("identity_columns", "drop")
        assert r["protocol"]["dedup"] == options.get("dedup", "none")
    if options.get("dedup") == "train":
        # what --dedup train dropped is what the audit counts as repeated training vectors
        # (identity columns included, as they are features here)
        audit = request.getfixturevalue("toniot_audit")
        assert records[0]["data"]["dedup_train_dropped"] == \
            audit["duplicates"]["train"]["duplicate_feature_vectors_with_identity"]
    board = render_leaderboard(records)
    assert "Unseen acc." in board and "Unseen macro-F1" in board
    # the shortcut note names the rule the stump chose, on a real encoded feature
    stump = next(r for r in records if r["model"] == "stump")
    assert stump["fitted"]["feature"] in data.feature_names
    assert f"`{stump['fitted']['rule']}`" in board
